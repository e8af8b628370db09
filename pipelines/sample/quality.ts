// Detection quality on the synthetic sample: how many planted silent churners customer_health flags
// (recall), how many flagged customers were planted (precision), and how early (days from the start of the
// planted decay to the first as-of date that flags the customer).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Db, sqlString } from '../duckdb.js';
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
