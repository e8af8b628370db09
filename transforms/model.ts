// A model is one table built in the run's DuckDB database. Most are SQL files under sql/; the few that must fit a
// statistical model on compact per-customer arrays are TypeScript (transforms/models/).
import type { Config } from '../config/schema.js';
import type { Db } from '../pipelines/base/duckdb.js';
import type { Logger } from '../pipelines/base/log.js';

export interface ModelContext {
  db: Db;
  config: Config;
  log: Logger;
  /** The run's as-of date, YYYY-MM-DD. */
  asOf: string;
  /** Notes for the manifest (e.g. "BG/NBD model not fitted: 3 repeat buyers"). */
  notes: string[];
}

export interface TsModel {
  /** The table the model creates (`create or replace table <name>`). */
  name: string;
  /** Tables it reads; the runner builds them first. */
  dependsOn: readonly string[];
  build(ctx: ModelContext): Promise<void>;
}
