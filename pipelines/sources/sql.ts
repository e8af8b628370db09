// A DuckDB query over local files, for exports that only make an entity when joined
// (e.g. Olist reviews -> orders -> customers). Relative paths resolve against the config file's folder.
import type { SqlSourceConfig } from '../../config/schema.js';
import type { Landed, Source, SourceContext } from './source.js';

export class SqlSource implements Source {
  constructor(private readonly config: SqlSourceConfig) {}

  async land(ctx: SourceContext): Promise<Landed> {
    return {
      files: [{ path: '', origin: `sources.${ctx.entity}.query` }],
      format: 'sql',
      sql: this.config.query,
    };
  }

  async check(): Promise<void> {
    // The query is checked when landing reads it (`churn validate` lands into memory).
  }
}
