// Detection quality on the synthetic sample: how many planted silent churners customer_health flags
// (recall), how many flagged customers were planted (precision), and how early (days from the start of the
// planted decay to the first as-of date that flags the customer).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type LoadedConfig, resolvePath } from '../../config/load.js';
import { createRunParams } from '../../transforms/params.js';
import { loadModels, runModels, selectModels } from '../../transforms/runner.js';
import { Db, sqlString } from '../base/duckdb.js';
import type { Logger } from '../base/log.js';
import { openRunDatabase } from '../run/database.js';
import { PARTITION_FILE } from '../sinks/sink.js';

export interface DetectionQuality {
  planted_silent_churners: number;
  flagged: number;
  recall: number;
  precision: number;
  [key: string]: number;
}

const FLAGGED = `status in ('at_risk', 'silent_churn')`;

/** Recall and precision of one customer_health table (any readable Parquet path) against ground_truth.csv. */
export async function scoreHealth(
  db: Db,
  sampleDir: string,
  healthParquet: string,
): Promise<DetectionQuality> {
  const truth = sqlString(join(sampleDir, 'ground_truth.csv'));
  const row = await db.one<Record<string, string | number>>(`
    with truth as (select customer_id, archetype from read_csv(${truth}, all_varchar = true)),
         health as (select customer_id, status from read_parquet(${sqlString(healthParquet)})),
         joined as (select truth.archetype, health.status from health inner join truth using (customer_id))
    select
        count(*) filter (where archetype = 'silent_churner') as planted,
        count(*) filter (where ${FLAGGED}) as flagged,
        count(*) filter (where ${FLAGGED} and archetype = 'silent_churner') as hits
    from joined`);
  const planted = Number(row?.planted ?? 0);
  const flagged = Number(row?.flagged ?? 0);
  const hits = Number(row?.hits ?? 0);
  return {
    planted_silent_churners: planted,
    flagged,
    recall: planted ? Number((hits / planted).toFixed(4)) : 0,
    precision: flagged ? Number((hits / flagged).toFixed(4)) : 0,
  };
}

/** The summary lines of `npm start`; empty when the output is not the sample's. */
export async function detectionQuality(
  sampleDir: string,
  outputDir: string,
  _asOf: string,
): Promise<Partial<DetectionQuality>> {
  const health = join(outputDir, 'current', 'customer_health', PARTITION_FILE);
  if (!existsSync(join(sampleDir, 'ground_truth.csv')) || !existsSync(health)) return {};
  const db = await Db.open();
  try {
    return await scoreHealth(db, sampleDir, health);
  } finally {
    db.close();
  }
}

/**
 * How early the planted silent churners are flagged: the models that customer_health needs are rebuilt for
 * as-of dates every `stepDays` days from the earliest planted decay start to the run's as-of date (landing
 * once), and for each planted churner the first of those nights that flags it on or after its decay start
 * is taken. Returns the median of those delays in days (resolution: stepDays).
 */
export async function medianDaysToFlag(
  loaded: LoadedConfig,
  sampleDir: string,
  asOf: string,
  log: Logger,
  stepDays = 7,
  onNight?: (done: number, total: number) => void,
): Promise<{ median_days_to_flag: number | null; nights_evaluated: number }> {
  const { config } = loaded;
  const stateDir = resolvePath(loaded, config.state_dir);
  const { db, configured } = await openRunDatabase({
    config,
    baseDir: loaded.baseDir,
    asOf,
    now: new Date(),
    landingRoot: join(stateDir, 'landing'),
    log,
    models: [],
  });
  try {
    await db.run(`
      create table planted as
      select customer_id, decay_start::date as decay_start
      from read_csv(${sqlString(join(sampleDir, 'ground_truth.csv'))}, all_varchar = true)
      where archetype = 'silent_churner' and decay_start is not null`);
    await db.run('create table first_flags (customer_id varchar, flagged_on date)');
    const first = (
      await db.one<{ d: string }>(`select strftime(min(decay_start), '%Y-%m-%d') as d from planted`)
    )?.d;
    if (!first) return { median_days_to_flag: null, nights_evaluated: 0 };
    // Typing and checks (chk_*) do not depend on the as-of date: built once, for the first night.
    const models = selectModels(await loadModels(), ['customer_health']);
    const nightly = models.filter((m) => !m.name.startsWith('chk_'));
    const quiet = log.child({}, { level: 'warn' });
    // Every stepDays-th night from the first planted decay, and the as-of date itself.
    const span = Math.round((Date.parse(asOf) - Date.parse(first)) / 86_400_000);
    const total = span < 0 ? 0 : Math.floor(span / stepDays) + 1 + (span % stepDays > 0 ? 1 : 0);
    onNight?.(0, total);
    let nights = 0;
    for (let night = new Date(`${first}T00:00:00Z`); night.toISOString().slice(0, 10) <= asOf; ) {
      const date = night.toISOString().slice(0, 10);
      await createRunParams(db, config, {
        asOf: date,
        runStartedAt: new Date(),
        configuredEntities: configured,
      });
      await runModels({ db, config, log: quiet, asOf: date, notes: [] }, nights === 0 ? models : nightly);
      await db.run(`
        insert into first_flags
        select health.customer_id, date ${sqlString(date)}
        from customer_health as health
        inner join planted using (customer_id)
        where health.${FLAGGED} and planted.decay_start <= date ${sqlString(date)}
          and health.customer_id not in (select customer_id from first_flags)`);
      nights += 1;
      onNight?.(nights, total);
      night.setUTCDate(night.getUTCDate() + stepDays);
      if (night.toISOString().slice(0, 10) > asOf && date < asOf) night = new Date(`${asOf}T00:00:00Z`);
    }
    const median = await db.one<{ days: number | null }>(`
      select median(date_diff('day', planted.decay_start, first_flags.flagged_on))::double as days
      from first_flags inner join planted using (customer_id)`);
    return { median_days_to_flag: median?.days ?? null, nights_evaluated: nights };
  } finally {
    db.close();
  }
}
