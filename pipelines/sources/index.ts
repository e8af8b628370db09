// Chooses the Source implementation for an entity's config.
import type { SourceConfig } from '../../config/schema.js';
import { LocalSource } from './local.js';
import { SqlSource } from './sql.js';
import { type Source, SourceError } from './source.js';

export async function createSource(config: SourceConfig): Promise<Source> {
  switch (config.type) {
    case 'local':
      return new LocalSource(config);
    case 'sql':
      return new SqlSource(config);
    default:
      throw new SourceError(`source type "${config.type}" is not available in this build`);
  }
}
