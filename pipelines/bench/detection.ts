// `npm run bench -- --detection`: how good the early warning is, on data it was not built on and on the sample.
//
// CDNOW (../shared/datasets/cdnow, or CDNOW_DIR): the pipeline runs as of 1997-09-30 on the whole master file
// (rows after the as-of date are outside the run, as in a backfill) and customer_health is scored against what
// the customers did next: gone = no purchase from 1997-10-01 to 1998-06-30. AUC of risk_score and of p_churn
// against the simple baselines (days since last activity, MBG/NBD 1 - p_alive, -expected purchases), and the
// share flagged beside the share that left.
// The sample, twice (the default shop-like population and app users with 4x the activity and noisier months):
// the same run on the synthetic population, scored against its ground truth: precision, recall and F1
// of the flags for the planted silent churners, the share flagged per archetype, and the median days from the
// start of a decline to the first flag (replaying earlier nights).
// A population of a different make (pipelines/bench/population.py, written apart from the sample generator), at
// three activity levels, scored the same way and beside a recent-to-baseline ratio rule; skipped without Python 3
// and NumPy (Debian: python3-pandas).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../config/load.js';
import { Db, sqlString } from '../base/duckdb.js';
import type { Logger } from '../base/log.js';
import { runPipeline } from '../run/index.js';
import { PARTITION_FILE } from '../sinks/sink.js';
import { findPandas } from './peer.js';
import { runToExit } from './process.js';

const FLAGGED = `status in ('at_risk', 'silent_churn')`;

const f1Of = (precision: number, recall: number) =>
  precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;

/**
 * The table `judged` that plantedScores reads: customer_health of a run (its Parquet file) joined to the ground truth's
 * archetype, `planted` (a silent churner) and decline_age_days (days from the decline start to the as-of date), plus
 * `extra` columns of the truth.
 */
async function createJudged(
  db: Db,
  healthFile: string,
  truthFile: string,
  asOf: string,
  extra = '',
): Promise<void> {
  await db.run(`
    create table judged as
    select
        health.*,
        truth.archetype,${extra ? `\n        ${extra},` : ''}
        truth.archetype = 'silent_churner' as planted,
        date_diff('day', truth.decay_start::date, date ${sqlString(asOf)}) as decline_age_days
    from read_parquet(${sqlString(healthFile)}) as health
    inner join read_csv(${sqlString(truthFile)}, all_varchar = true) as truth using (customer_id)`);
}

/**
 * The sample's customers the early warning is for: not those already gone by the as-of date (lost, cancelled), whom
 * every score ranks above a churner still buying, so that over all customers the AUC of a silent churner is below 0.5.
 */
const PRESENT = `(select * from judged where archetype not in ('lost', 'cancelled'))`;

/** AUC (Mann-Whitney, ties half) of `score` for `label` over a table, in SQL. */
function aucSql(table: string, score: string, label: string): string {
  return `
    with scored as (select (${label})::integer as y, (${score})::double as s from ${table} where (${score}) is not null),
         ranked as (select y, rank() over (order by s) + (count(*) over (partition by s) - 1) / 2.0 as r from scored)
    select (sum(r) filter (where y = 1) - sum(y) * (sum(y) + 1) / 2.0) / (sum(y) * sum(1 - y)) as auc from ranked`;
}

export interface CdnowDetection {
  customers: number;
  gone_share: number;
  flagged_share: number;
  flagged_or_lost_share: number;
  auc: Record<string, number>;
  precision: number;
  recall: number;
  /** Per status: its share of the customers and the share of them gone. */
  by_status: { status: string; share: number; gone_share: number }[];
}

export async function cdnowDetection(cdnowDir: string, log: Logger): Promise<CdnowDetection> {
  const out = mkdtempSync(join(tmpdir(), 'churn-detection-cdnow-'));
  try {
    const example = resolve('examples/cdnow.yaml');
    process.env.CDNOW_DIR = cdnowDir;
    const loaded = loadConfig(example);
    const config = {
      ...loaded.config,
      output: { type: 'local' as const, path: join(out, 'out') },
      state_dir: join(out, 'state'),
    };
    await runPipeline({ ...loaded, config }, { asOf: '1997-09-30', log });
    const db = await Db.open();
    try {
      const health = sqlString(join(out, 'out', 'current', 'customer_health', PARTITION_FILE));
      const master = sqlString(join(cdnowDir, 'CDNOW_master.txt'));
      await db.run(`
        create table later as
        select distinct regexp_split_to_array(trim(line), '\\s+')[1] as customer_id
        from read_csv(${master}, columns = {'line': 'varchar'}, header = false, delim = '|', skip = 1)
        where strptime(regexp_split_to_array(trim(line), '\\s+')[2], '%Y%m%d')::date
            between date '1997-10-01' and date '1998-06-30'`);
      await db.run(`
        create table judged as
        select health.*, later.customer_id is null as gone
        from read_parquet(${health}) as health
        left join later using (customer_id)`);
      const auc: Record<string, number> = {};
      for (const [name, score] of [
        ['risk_score', 'risk_score'],
        ['p_churn', 'p_churn'],
        ['days_since_last_activity (baseline)', 'days_since_last_activity'],
        ['1 - p_alive, MBG/NBD (baseline)', '1 - p_alive'],
        ['-expected_purchases_next_90d (baseline)', '-expected_purchases_next_90d'],
      ] as const) {
        auc[name] = await db.number(aucSql('judged', score, 'gone'));
      }
      const row = await db.one(`
        select count(*) as customers, avg(gone::integer) as gone_share,
            avg((${FLAGGED})::integer) as flagged_share,
            avg((${FLAGGED} or status = 'lost')::integer) as flagged_or_lost_share,
            count(*) filter (where ${FLAGGED} and gone) / count(*) filter (where ${FLAGGED}) as precision,
            count(*) filter (where ${FLAGGED} and gone) / count(*) filter (where gone) as recall
        from judged`);
      const byStatus = await db.all(`
        select status, count(*) / sum(count(*)) over () as share, avg(gone::integer) as gone_share
        from judged group by status order by share desc`);
      return {
        by_status: byStatus.map((r) => ({
          status: String(r.status),
          share: Number(r.share),
          gone_share: Number(r.gone_share),
        })),
        customers: Number(row?.customers),
        gone_share: Number(row?.gone_share),
        flagged_share: Number(row?.flagged_share),
        flagged_or_lost_share: Number(row?.flagged_or_lost_share),
        auc,
        precision: Number(row?.precision),
        recall: Number(row?.recall),
      };
    } finally {
      db.close();
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * What every population with ground truth reports, from a table `judged`: customer_health with the truth's archetype,
 * planted (a silent churner) and decline_age_days (days from the decline start to the as-of date).
 */
interface PlantedScores {
  customers: number;
  precision: number;
  recall: number;
  f1: number;
  flagged_by_archetype: Record<string, number>;
  /** Silent churners flagged, by how long before the as-of date their decline began (the ground truth's). */
  recall_by_decline_age: { age: string; churners: number; recall: number }[];
}

async function plantedScores(db: Db): Promise<PlantedScores> {
  const row = await db.one(`
    select count(*) as customers,
        count(*) filter (where ${FLAGGED} and planted) / count(*) filter (where ${FLAGGED}) as precision,
        count(*) filter (where ${FLAGGED} and planted) / count(*) filter (where planted) as recall
    from judged`);
  const byArchetype = await db.all(
    `select archetype, avg((${FLAGGED})::integer) as share from judged group by archetype order by archetype`,
  );
  // A decline of a few weeks has cost few events yet: recall by the decline's age shows how far a test can see.
  const byAge = await db.all(
    `select
         case when decline_age_days < 30 then 'under 30 days' when decline_age_days < 90 then '30 to 89 days'
              else '90 days or more' end as age,
         min(decline_age_days) as first_day,
         count(*) as churners,
         avg((${FLAGGED})::integer) as recall
     from judged where planted and decline_age_days >= 0 group by all order by first_day`,
  );
  const precision = Number(row?.precision);
  const recall = Number(row?.recall);
  return {
    customers: Number(row?.customers),
    precision,
    recall,
    f1: f1Of(precision, recall),
    flagged_by_archetype: Object.fromEntries(byArchetype.map((r) => [String(r.archetype), Number(r.share)])),
    recall_by_decline_age: byAge.map((r) => ({
      age: String(r.age),
      churners: Number(r.churners),
      recall: Number(r.recall),
    })),
  };
}

export interface SampleDetection extends PlantedScores {
  auc_risk_score: number;
  auc_recency: number;
  /** The same among the customers still there: without those already lost or cancelled (ground truth). */
  auc_risk_score_present: number;
  auc_recency_present: number;
  /** Silent churners flagged, by kind of decline (fast, slow, partial). */
  recall_by_decline: Record<string, number>;
  median_days_to_flag: number | null;
}

export async function sampleDetection(
  customers: number,
  seed: number,
  log: Logger,
  activityScale = 1,
): Promise<SampleDetection> {
  const dir = mkdtempSync(join(tmpdir(), 'churn-detection-sample-'));
  try {
    const { generateSample } = await import('../sample/generate.js');
    const sample = await generateSample(
      { dir: join(dir, 'data', 'sample'), customers, seed, activityScale },
      log,
    );
    const defaults = loadConfig();
    const configFile = join(dir, 'churn.yaml');
    writeFileSync(configFile, '');
    const loaded = { ...defaults, file: configFile, baseDir: dir };
    const result = await runPipeline(loaded, { asOf: sample.asOf, log });
    const truthFile = join(dir, 'data', 'sample', 'ground_truth.csv');
    const db = await Db.open();
    let scored: Omit<SampleDetection, 'median_days_to_flag'>;
    try {
      const health = join(result.outputDir, 'current', 'customer_health', PARTITION_FILE);
      await createJudged(db, health, truthFile, sample.asOf, 'truth.decay_kind');
      const planted = await plantedScores(db);
      const byDecline = await db.all(
        `select decay_kind, avg((${FLAGGED})::integer) as share from judged where planted group by all order by all`,
      );
      scored = {
        ...planted,
        auc_risk_score: await db.number(aucSql('judged', 'risk_score', 'planted')),
        auc_recency: await db.number(aucSql('judged', 'days_since_last_activity', 'planted')),
        auc_risk_score_present: await db.number(aucSql(PRESENT, 'risk_score', 'planted')),
        auc_recency_present: await db.number(aucSql(PRESENT, 'days_since_last_activity', 'planted')),
        recall_by_decline: Object.fromEntries(byDecline.map((r) => [String(r.decay_kind), Number(r.share)])),
      };
    } finally {
      db.close();
    }
    const { medianDaysToFlag } = await import('../sample/quality.js');
    const replay = await medianDaysToFlag(loaded, join(dir, 'data', 'sample'), sample.asOf, log, 10);
    return { ...scored, median_days_to_flag: replay.median_days_to_flag };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const POPULATION_SCRIPT = fileURLToPath(new URL('./population.py', import.meta.url));
const POPULATION_AS_OF = '2025-06-30';

export interface PopulationDetection extends PlantedScores {
  /** The same flags from "active days in the last 60 days below half the rate of the 180 days before". */
  ratio_rule: { precision: number; recall: number; f1: number; steady: number; slow_regular: number };
  median_days_to_flag: number | null;
}

/**
 * The population of a different make (pipelines/bench/population.py: NumPy, written apart from the sample generator
 * and the early warning): the pipeline as of 2025-06-30 on its customers, orders and app sessions, judged against
 * its truth, beside a recent-to-baseline ratio rule. Without a Python 3 that has NumPy, why it was skipped.
 */
export async function populationDetection(
  customers: number,
  seed: number,
  scale: number,
  log: Logger,
  season = 0,
): Promise<PopulationDetection | { missing: string }> {
  const python = await findPandas();
  if ('missing' in python) return { missing: python.missing };
  const dir = mkdtempSync(join(tmpdir(), 'churn-detection-population-'));
  try {
    const data = join(dir, 'data');
    const made = await runToExit(python.python, [
      POPULATION_SCRIPT,
      '--out',
      data,
      '--seed',
      String(seed),
      '--customers',
      String(customers),
      '--scale',
      String(scale),
      '--season',
      String(season),
    ]);
    if (made.code !== 0) throw new Error(`${POPULATION_SCRIPT} failed: ${made.output.trim()}`);
    const configFile = join(dir, 'churn.yaml');
    writeFileSync(
      configFile,
      [
        'business_time_zone: UTC',
        'sources:',
        ...['customers', 'orders', 'activity'].map((e) => `  ${e}: { type: local, path: data/${e}.csv }`),
        'segment_by: []',
        'output: { type: local, path: out }',
        'state_dir: .churn',
        '',
      ].join('\n'),
    );
    const loaded = loadConfig(configFile);
    const result = await runPipeline(loaded, { asOf: POPULATION_AS_OF, log });
    const db = await Db.open();
    let scored: Omit<PopulationDetection, 'median_days_to_flag'>;
    try {
      const health = join(result.outputDir, 'current', 'customer_health', PARTITION_FILE);
      await createJudged(db, health, join(data, 'ground_truth.csv'), POPULATION_AS_OF);
      const asOf = `date ${sqlString(POPULATION_AS_OF)}`;
      const ratio = await db.one(`
        with active_days as (
            select customer_id, occurred_at::date as day from read_csv(${sqlString(join(data, 'activity.csv'))})
            union
            select customer_id, ordered_at::date from read_csv(${sqlString(join(data, 'orders.csv'))})
        ),
        rates as (
            select customer_id,
                count(*) filter (where day > ${asOf} - 60) / 60 as recent_rate,
                count(*) filter (where day <= ${asOf} - 60 and day > ${asOf} - 240) / 180 as baseline_rate,
                count(*) filter (where day <= ${asOf} - 60 and day > ${asOf} - 240) as baseline_days
            from active_days group by all
        ),
        ruled as (
            select judged.archetype, judged.planted,
                coalesce(rates.baseline_days >= 2 and rates.recent_rate < 0.5 * rates.baseline_rate, false) as flagged
            from judged left join rates using (customer_id)
        )
        select
            count(*) filter (where flagged and planted) / count(*) filter (where flagged) as precision,
            count(*) filter (where flagged and planted) / count(*) filter (where planted) as recall,
            avg(flagged::integer) filter (where archetype = 'steady') as steady,
            avg(flagged::integer) filter (where archetype = 'slow_regular') as slow_regular
        from ruled`);
      const precision = Number(ratio?.precision);
      const recall = Number(ratio?.recall);
      scored = {
        ...(await plantedScores(db)),
        ratio_rule: {
          precision,
          recall,
          f1: f1Of(precision, recall),
          steady: Number(ratio?.steady),
          slow_regular: Number(ratio?.slow_regular),
        },
      };
    } finally {
      db.close();
    }
    const { medianDaysToFlag } = await import('../sample/quality.js');
    const replay = await medianDaysToFlag(loaded, data, POPULATION_AS_OF, log, 10);
    return { ...scored, median_days_to_flag: replay.median_days_to_flag };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : 'n/a');

function archetypeLines(s: PlantedScores): string[] {
  return [
    '  flagged share by archetype:',
    ...Object.entries(s.flagged_by_archetype).map(([k, v]) => `    ${k.padEnd(20)} ${pct(v)}`),
  ];
}

function declineAgeLines(s: PlantedScores): string[] {
  return [
    '  silent churners flagged, by how long before the as-of date their decline began:',
    ...s.recall_by_decline_age.map((a) => `    ${a.age.padEnd(20)} ${pct(a.recall)} of ${a.churners}`),
  ];
}

export async function benchDetection(options: {
  customers: number;
  seed: number;
  log: Logger;
}): Promise<void> {
  const cdnowDir = resolve(process.env.CDNOW_DIR ?? '../shared/datasets/cdnow');
  const lines: string[] = ['churn-pipeline bench --detection', ''];
  if (existsSync(join(cdnowDir, 'CDNOW_master.txt'))) {
    const c = await cdnowDetection(cdnowDir, options.log);
    lines.push(
      `CDNOW as of 1997-09-30, gone = no purchase to 1998-06-30 (${c.customers} customers, ${pct(c.gone_share)} gone)`,
      ...Object.entries(c.auc).map(([k, v]) => `  AUC ${k.padEnd(42)} ${f3(v)}`),
      `  flagged (at_risk or silent_churn)              ${pct(c.flagged_share)} (with lost: ${pct(c.flagged_or_lost_share)})`,
      `  precision / recall of the flags for "gone"     ${f3(c.precision)} / ${f3(c.recall)}`,
      '  status: share of customers, share of them gone',
      ...c.by_status.map(
        (r) => `    ${r.status.padEnd(20)} ${pct(r.share).padStart(6)}  ${pct(r.gone_share).padStart(6)}`,
      ),
      '',
    );
  } else lines.push(`CDNOW: skipped (${cdnowDir}/CDNOW_master.txt not found; set CDNOW_DIR)`, '');
  // Two populations with ground truth: the shop-like default (about 3 active days a month for the median
  // customer) and app users (4x the activity, noisier months), each judged against its planted truth.
  for (const [name, scale] of [
    ['sample', 1],
    ['sample, app users (4x activity, month CV 0.5)', 4],
  ] as const) {
    const s = await sampleDetection(options.customers, options.seed, options.log, scale);
    lines.push(
      `${name} (${s.customers} customers, seed ${options.seed}), planted silent churners`,
      `  precision / recall / F1                        ${f3(s.precision)} / ${f3(s.recall)} / ${f3(s.f1)}`,
      `  AUC risk_score / days since last activity      ${f3(s.auc_risk_score)} / ${f3(s.auc_recency)}`,
      `    among those still there (not lost, cancelled) ${f3(s.auc_risk_score_present)} / ${f3(s.auc_recency_present)}`,
      `  median days from decline start to first flag   ${s.median_days_to_flag ?? 'n/a'} (nights every 10 days)`,
      ...archetypeLines(s),
      '  silent churners flagged, by kind of decline:',
      ...Object.entries(s.recall_by_decline).map(([k, v]) => `    ${k.padEnd(20)} ${pct(v)}`),
      ...declineAgeLines(s),
      '',
    );
  }
  // The population of a different make, at three activity levels (median 2.5, 5 and 15 active days a month), and
  // with a season common to every customer (+-40%, busiest in mid-December: the as-of date is in its trough).
  for (const [scale, season] of [
    [0.5, 0],
    [1, 0],
    [3, 0],
    [1, 0.4],
  ] as const) {
    const p = await populationDetection(options.customers, options.seed, scale, options.log, season);
    if ('missing' in p) {
      lines.push(`population of a different make: skipped (${p.missing})`, '');
      break;
    }
    const r = p.ratio_rule;
    lines.push(
      `population of a different make (pipelines/bench/population.py, ${p.customers} customers, seed ${options.seed}, ` +
        `activity x${scale}${season ? `, season +-${100 * season}%` : ''}), planted silent churners`,
      `  precision / recall / F1                        ${f3(p.precision)} / ${f3(p.recall)} / ${f3(p.f1)}`,
      `  ratio rule (last 60 days < half the 180 before) ${f3(r.precision)} / ${f3(r.recall)} / ${f3(r.f1)}, ` +
        `steady ${pct(r.steady)}, slow regular ${pct(r.slow_regular)} flagged`,
      `  median days from decline start to first flag   ${p.median_days_to_flag ?? 'n/a'} (nights every 10 days)`,
      ...archetypeLines(p),
      ...declineAgeLines(p),
      '',
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
