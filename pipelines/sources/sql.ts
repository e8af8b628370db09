// A DuckDB query over local files, for exports that only make an entity when joined
// (e.g. Olist reviews -> orders -> customers). Relative paths resolve against the config file's folder.
// The query must be one SELECT statement (checked with DuckDB's parser when it is landed and by `check`).
import type { SqlSourceConfig } from '../../config/schema.js';
import { parseExpression, parseQuery } from './expression.js';
import type { Landed, Source, SourceContext } from './source.js';

export class SqlSource implements Source {
  constructor(private readonly config: SqlSourceConfig) {}

  async land(ctx: SourceContext): Promise<Landed> {
    return {
      files: [{ path: '', origin: `sources.${ctx.entity}.query` }],
      format: 'sql',
      sql: await parseQuery(undefined, this.config.query, `sources.${ctx.entity}.query`),
    };
  }

  async check(ctx: SourceContext): Promise<void> {
    // The query's tables and columns are checked when landing reads it (`churn validate` lands into memory).
    await parseQuery(undefined, this.config.query, `sources.${ctx.entity}.query`);
    if (this.config.where) await parseExpression(undefined, this.config.where, `sources.${ctx.entity}.where`);
  }
}
