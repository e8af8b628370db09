// The campaign measured on the sample, as `npm start` and a run 45 days later do it: the audience published on the
// sample's as-of date is read back from the output's history by the later run, whose reactivation_outcomes must hold
// the effect the generator planted (meta.json campaign) inside its 95% intervals; and the same two runs published
// to S3 (s3rver) give the same table.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import { Db, sqlString } from '../pipelines/base/duckdb.js';
import { silentLogger } from '../pipelines/base/log.js';
import { outcomeSummaryLines } from '../pipelines/outcomes/summary.js';
import { type RunResult, runPipeline } from '../pipelines/run/index.js';
import { generateSample } from '../pipelines/sample/generate.js';
import { type S3rverHandle, s3rverClient, startS3rver, stubS3rverEnv } from './support/s3rver.js';

const LATER = '2026-08-14';
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface Campaign {
  audience_as_of: string;
  planted_lift_sent: number;
  planted_lift_targeted: number;
}

/** A lift in percentage points with its 95% interval: columns `<name>_pct_points`, `_ci_low` and `_ci_high`. */
type Lift<Name extends string> = Record<`${Name}_pct_points` | `${Name}_ci_low` | `${Name}_ci_high`, number>;

interface TargetRow extends Lift<'rate_lift'>, Lift<'sent_rate_lift'> {
  [key: string]: string | number | boolean | null;
  status: string;
  customers: number;
  never_sent_customers: number;
}

describe('the planted campaign, measured 45 days later from the published history', () => {
  const dir = mkdtempSync(join(tmpdir(), 'churn-outcomes-'));
  let campaign: Campaign;
  let later: RunResult;
  let s3: S3rverHandle;
  let db: Db;

  const outcomesFile = (out: string) => join(dir, out, 'current', 'reactivation_outcomes', 'part-0.parquet');

  beforeAll(async () => {
    stubS3rverEnv();
    // the sample of `npm start` (2,000 customers, seed 42) and its embedded config
    const sample = await generateSample({ dir: join(dir, 'data', 'sample'), customers: 2000, seed: 42 });
    campaign = (
      JSON.parse(readFileSync(join(dir, 'data', 'sample', 'meta.json'), 'utf8')) as { campaign: Campaign }
    ).campaign;
    expect(campaign.audience_as_of).toBe(sample.asOf);
    const defaults = readFileSync(DEFAULT_CONFIG_FILE, 'utf8');
    writeFileSync(join(dir, 'local.yaml'), defaults.replace('path: out', 'path: out-local'));
    s3 = await startS3rver({ buckets: ['lake'] });
    writeFileSync(
      join(dir, 's3.yaml'),
      defaults.replace(
        /output:\n {2}type: local\n {2}path: out\n/,
        `output:\n  type: s3\n  bucket: lake\n  prefix: churn\n  endpoint: ${s3.endpoint}\n  force_path_style: true\n  local_path: out-s3\n`,
      ),
    );
    const local = loadConfig(join(dir, 'local.yaml'));
    const remote = loadConfig(join(dir, 's3.yaml'));
    expect(remote.config.output.type).toBe('s3');
    const log = silentLogger();
    await runPipeline(local, { asOf: sample.asOf, log });
    later = await runPipeline(local, { asOf: LATER, log });
    await runPipeline(remote, { asOf: sample.asOf, log });
    await runPipeline(remote, { asOf: LATER, log });
    db = await Db.open();
  }, 300_000);

  afterAll(async () => {
    db?.close();
    await s3?.stop();
    if (s3) await rm(s3.directory, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });

  async function target(window = 30): Promise<TargetRow> {
    const row = await db.one<TargetRow>(`
      select * exclude (audience_as_of, window_end) from read_parquet(${sqlString(outcomesFile('out-local'))})
      where segment_by = 'all' and audience_group = 'target' and window_days = ${window}
        and audience_as_of = date ${sqlString(campaign.audience_as_of)}`);
    if (!row) throw new Error('no outcome row for the planted campaign');
    return row;
  }

  it('holds the planted lift of the whole target group inside the 95% interval', async () => {
    const row = await target();
    expect(row.status).toBe('complete');
    expect(row.customers).toBeGreaterThan(50);
    const planted = 100 * campaign.planted_lift_targeted;
    expect(row.rate_lift_ci_low).toBeLessThanOrEqual(planted);
    expect(row.rate_lift_ci_high).toBeGreaterThanOrEqual(planted);
    // an interval, not everything: narrower than the whole range of a difference of rates
    expect(row.rate_lift_ci_high - row.rate_lift_ci_low).toBeLessThan(80);
  });

  it('holds the planted lift among those the send log saw e-mailed, and counts the targeted never sent', async () => {
    const row = await target();
    const planted = 100 * campaign.planted_lift_sent;
    expect(row.sent_rate_lift_ci_low).toBeLessThanOrEqual(planted);
    expect(row.sent_rate_lift_ci_high).toBeGreaterThanOrEqual(planted);
    expect(row.never_sent_customers).toBeGreaterThan(0);
    expect(row.never_sent_customers).toBeLessThan(row.customers * 0.25);
  });

  it('prints the lift with its interval and trend in the run summary', () => {
    const s = later.summary;
    expect(s.outcome_audience_as_of).toBe(campaign.audience_as_of);
    expect(s.outcome_window_days).toBe(30);
    const lines = outcomeSummaryLines(s).join('\n');
    expect(lines).toMatch(/campaign lift \(30 days\): +audience of 2026-06-30: /);
    expect(lines).toMatch(/lift [+-]\d+\.\d pts \(95% CI [+-]\d+\.\d to [+-]\d+\.\d\), (not )?significant/);
    expect(lines).toMatch(/trend \(30-day lift by audience\): 2026-06-30 [+-]\d+\.\d/);
  });

  it('reads the same from the S3 history as from the local one', async () => {
    const localBytes = readFileSync(outcomesFile('out-local'));
    const client = s3rverClient(s3);
    try {
      for (const table of ['reactivation_outcomes', 'reactivation_outcome_customers']) {
        const object = await client.send(
          new GetObjectCommand({ Bucket: 'lake', Key: `churn/${table}/as_of=${LATER}/part-0.parquet` }),
        );
        const remoteBytes = Buffer.from(await object.Body!.transformToByteArray());
        const localTable = readFileSync(join(dir, 'out-local', table, `as_of=${LATER}`, 'part-0.parquet'));
        expect(sha(remoteBytes), table).toBe(sha(localTable));
      }
    } finally {
      client.destroy();
    }
    expect(localBytes.length).toBeGreaterThan(0);
    expect(
      await db.number(
        `select count(*) from read_parquet(${sqlString(outcomesFile('out-s3'))}) where customers > 0`,
      ),
    ).toBeGreaterThan(0);
  });
});
