// Which models a shard builds and which the merge builds. A model is `local` when its yml says `config: { shard:
// local }`: its rows are per customer (a customer_id column) and it combines only rows of the same customer, so the
// union of its shard tables is the table a single-node run builds. Every other model is global and runs in the merge
// on the union. The yml states it because only the author of the SQL knows it (a median over all customers is not
// per customer); the plan checks what can be checked: a local model reads only local models and the run's own
// tables (run_params, segment_dimensions, raw_<entity>).
//
// The local models run in two steps (docs/shards.md): the models that read raw_<entity> (the checked tables,
// chk_*) on the shard's rows plus the few rows that decide them (duplicate keys across shards, e-mail-only events),
// then, once those tables hold only the shard's customers, the rest.
import { createHash } from 'node:crypto';
import { tablesRead } from '../../transforms/dependencies.js';
import { type ModelCatalog, modelCatalog } from '../../transforms/metadata.js';
import { type AnyModel, ModelError, orderModels } from '../../transforms/runner.js';
import { Db } from '../base/duckdb.js';

/** Run tables a local model may read besides local models: the same in every shard, or filtered by shard. */
const CONSTANT_SOURCES = new Set(['run_params', 'segment_dimensions']);
const RAW = /^raw_[a-z_]+$/;

export interface ShardPlan {
  /** Local models that read raw_<entity>, in build order: built on the shard's rows and those that decide them. */
  checked: AnyModel[];
  /** The other local models, in build order: built once the checked tables hold only the shard's customers. */
  local: AnyModel[];
  /** The models the merge builds on the union of the local tables. */
  global: AnyModel[];
  /** The raw_<entity> tables each checked model reads. */
  rawInputs: ReadonlyMap<string, readonly string[]>;
  /** A digest of the local models' definitions: shards and merge must have built the same ones. */
  digest: string;
}

async function tablesOf(db: Db, model: AnyModel): Promise<string[]> {
  if (model.kind === 'ts') return [...model.model.dependsOn];
  const parsed = await tablesRead(db, model.sql);
  if ('error' in parsed)
    throw new ModelError(`model ${model.name} (${model.file}) cannot be parsed: ${parsed.error}`);
  return parsed.tables;
}

function definition(model: AnyModel): string {
  return model.kind === 'sql' ? model.sql : `${model.file}:${model.model.dependsOn.join(',')}`;
}

/** Splits the models into the shard's and the merge's; throws a ModelError naming a local model that cannot be. */
export async function planShards(
  models: readonly AnyModel[],
  catalog: Pick<ModelCatalog, 'model'> = modelCatalog(),
): Promise<ShardPlan> {
  const isLocal = (m: AnyModel) => catalog.model(m.name)?.shard === 'local';
  const localNames = new Set(models.filter(isLocal).map((m) => m.name));
  const checkedNames = new Set<string>();
  const rawInputs = new Map<string, string[]>();
  const db = await Db.open();
  try {
    for (const model of models) {
      const tables = await tablesOf(db, model);
      if (!isLocal(model)) {
        const raw = tables.find((t) => RAW.test(t));
        if (raw) {
          throw new ModelError(
            `model ${model.name} (${model.file}) reads ${raw}, which a merge holds only as row provenance: mark it shard: local, ` +
              'or read the checked table (chk_*) instead',
          );
        }
        continue;
      }
      for (const table of tables) {
        if (localNames.has(table) || CONSTANT_SOURCES.has(table) || RAW.test(table)) continue;
        const producer = models.find((m) => m.creates.includes(table));
        throw new ModelError(
          `model ${model.name} (${model.file}) is shard: local but reads ${table}, which ${
            producer ? `is built in the merge (${producer.file} is not shard: local)` : 'no shard has'
          }: mark ${producer ? producer.name : table} shard: local if its rows are per customer, or make ${model.name} global`,
        );
      }
      const raw = tables.filter((t) => RAW.test(t));
      if (raw.length > 0) {
        checkedNames.add(model.name);
        rawInputs.set(model.name, raw);
      }
    }
  } finally {
    db.close();
  }
  for (const model of models.filter((m) => checkedNames.has(m.name))) {
    const later = model.reads.filter((r) => localNames.has(r) && !checkedNames.has(r));
    if (later.length > 0) {
      throw new ModelError(
        `model ${model.name} (${model.file}) reads raw input and ${later.join(', ')}, which is built after the shard's ` +
          'rows are settled: read only raw_<entity> and other checked models there',
      );
    }
  }
  const ordered = orderModels([...models]);
  const checked = ordered.filter((m) => checkedNames.has(m.name));
  const local = ordered.filter((m) => localNames.has(m.name) && !checkedNames.has(m.name));
  const global = ordered.filter((m) => !localNames.has(m.name));
  const hash = createHash('sha256');
  for (const m of [...checked, ...local]) hash.update(`${m.name}\n${definition(m)}\n`);
  return { checked, local, global, rawInputs, digest: hash.digest('hex') };
}
