// Chooses the Source implementation for an entity's config. Remote implementations load on demand, so a
// local-only run never imports the AWS SDK or the database drivers.
import type { SourceConfig } from '../../config/schema.js';
import { LocalSource } from './local.js';
import type { Source } from './source.js';
import { SqlSource } from './sql.js';

export async function createSource(config: SourceConfig): Promise<Source> {
  switch (config.type) {
    case 'local':
      return new LocalSource(config);
    case 'sql':
      return new SqlSource(config);
    case 's3': {
      const { S3Source } = await import('./s3.js');
      return new S3Source(config);
    }
    case 'warehouse': {
      const { WarehouseSource } = await import('./warehouse/index.js');
      return new WarehouseSource(config);
    }
  }
}
