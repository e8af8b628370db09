// `churn validate`: the config, every source and the output checked without writing anything a reader
// could see. Sources that read local files are also landed and modelled in memory, so bad rows show up
// as quarantine counts before the first real run.
import { join } from 'node:path';
import { type LoadedConfig, resolvePath } from '../../config/load.js';
import { ENTITIES } from '../../config/schema.js';
import type { Logger } from '../base/log.js';
import { runPipeline } from '../run/index.js';
import { createSink } from '../sinks/index.js';
import { createSource } from '../sources/index.js';

export interface ValidationReport {
  checked: { name: string; ok: boolean; problem?: string }[];
  quarantine?: Record<string, { rows: number; quarantined: number }>;
  asOf?: string;
}

export async function validate(
  loaded: LoadedConfig,
  asOf: string | undefined,
  log: Logger,
): Promise<ValidationReport> {
  const { config } = loaded;
  const stateDir = resolvePath(loaded, config.state_dir);
  const checked: ValidationReport['checked'] = [];
  for (const entity of ENTITIES) {
    const spec = config.sources[entity];
    if (!spec) continue;
    const name = `sources.${entity} (${spec.type})`;
    const source = await createSource(spec);
    try {
      await source.check({
        entity,
        landingDir: join(stateDir, 'landing', entity),
        baseDir: loaded.baseDir,
        log,
      });
      checked.push({ name, ok: true });
    } catch (err) {
      checked.push({ name, ok: false, problem: (err as Error).message });
    } finally {
      await source.close?.();
    }
  }
  const { sink, close } = await createSink(loaded);
  try {
    await sink.check();
    checked.push({ name: `output (${config.output.type}: ${sink.location})`, ok: true });
  } catch (err) {
    checked.push({ name: `output (${config.output.type})`, ok: false, problem: (err as Error).message });
  } finally {
    await close();
  }
  const report: ValidationReport = { checked };
  const allLocal = Object.values(config.sources).every((s) => s.type === 'local' || s.type === 'sql');
  if (checked.every((c) => c.ok) && allLocal) {
    const result = await runPipeline(loaded, { asOf, log, dryRun: true });
    report.asOf = result.asOf;
    report.quarantine = result.manifest.quarantine;
  }
  return report;
}
