// Bench of the warehouse source: N order rows generated in PostgreSQL (server-side generate_series), extracted by
// WarehouseSource into Parquet in a temp folder. Reports rows/s and the process's peak RSS, which must stay bounded
// whatever N is (the rows are streamed in batch_size chunks into numbered Parquet files).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { sourceSchema } from '../../config/schema.js';
import type { Logger } from '../base/log.js';
import { WarehouseSource } from '../sources/warehouse/index.js';

export const DEFAULT_BENCH_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface WarehouseBenchResult {
  rows: number;
  /** Extraction wall time (land(): query, streaming, Parquet writing, and compaction when incremental). */
  ms: number;
  rowsPerSecond: number;
  /** Peak resident set size of this process so far (process.resourceUsage().maxRSS). */
  peakRssMb: number;
  /** Server-side table generation time (not part of ms). */
  setupMs: number;
  /** CPU time of this process during the extraction (user + system): a figure less sensitive to a busy machine. */
  cpuMs: number;
  files: number;
}

export async function benchWarehouseExtract(opts: {
  rows: number;
  /** A PostgreSQL server to bench against (default: env CHURN_BENCH_PG_URL, else the local test server). */
  url?: string;
  log: Logger;
  /** Extract with cursor_column (updated_at): the first run then also compacts into one deduplicated file. */
  incremental?: boolean;
  batchSize?: number;
}): Promise<WarehouseBenchResult> {
  const url = opts.url ?? process.env.CHURN_BENCH_PG_URL ?? DEFAULT_BENCH_PG_URL;
  const schema = `churn_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  admin.on('error', () => {});
  try {
    await admin.connect();
  } catch (err) {
    const host = new URL(url);
    host.password = '';
    throw new Error(
      `warehouse bench: no PostgreSQL at ${host.toString()} (${err instanceof Error ? err.message : String(err)}); set CHURN_BENCH_PG_URL`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'churn-bench-wh-'));
  try {
    const setupStarted = Date.now();
    await admin.query(`create schema ${schema}`);
    await admin.query(
      `create unlogged table ${schema}.orders as
       select g::int8 as order_id,
              (g % 100000)::int8 as customer_id,
              timestamptz '2023-01-01 00:00:00+00' + g * interval '1 second' as ordered_at,
              ((g % 10000) * 1.37)::numeric(18,2) as amount,
              (array['completed','completed','completed','refunded','cancelled'])[1 + g % 5] as status,
              'EUR'::text as currency,
              timestamptz '2023-01-01 00:00:00+00' + g * interval '1 second' + interval '5 minutes' as updated_at
       from generate_series(1, $1::int8) g`,
      [opts.rows],
    );
    const setupMs = Date.now() - setupStarted;
    opts.log.info({ rows: opts.rows, setupMs }, 'warehouse bench: table generated');

    const config = sourceSchema.parse({
      type: 'warehouse',
      dialect: 'postgres',
      connection: url,
      schema,
      table: 'orders',
      ...(opts.incremental ? { cursor_column: 'updated_at', overlap: '1 hour' } : {}),
      ...(opts.batchSize ? { batch_size: opts.batchSize } : {}),
    });
    if (config.type !== 'warehouse') throw new Error('unreachable');
    const source = new WarehouseSource(config);
    const started = Date.now();
    const cpuBefore = process.cpuUsage();
    let files: number;
    try {
      const landed = await source.land({ entity: 'orders', landingDir: dir, baseDir: dir, log: opts.log });
      files = landed.files.length;
    } finally {
      await source.close();
    }
    const ms = Date.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    const rows = source.lastLand?.rowsExtracted ?? 0;
    const result: WarehouseBenchResult = {
      rows,
      ms,
      rowsPerSecond: Math.round(rows / Math.max(ms / 1000, 0.001)),
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      setupMs,
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      files,
    };
    opts.log.info(result, 'warehouse bench: extracted');
    return result;
  } finally {
    await admin.query(`drop schema if exists ${schema} cascade`).catch(() => {});
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  }
}
