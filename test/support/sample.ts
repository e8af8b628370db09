// The project of `npm start` in a temp folder: the synthetic sample in data/sample and the embedded default config
// beside it as churn.yaml, loaded.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CONFIG_FILE, type LoadedConfig, loadConfig } from '../../config/load.js';
import { generateSample } from '../../pipelines/sample/generate.js';

export async function sampleProject(
  dir: string,
  sample: { customers: number; seed: number },
): Promise<{ asOf: string; loaded: LoadedConfig }> {
  const { asOf } = await generateSample({ dir: join(dir, 'data', 'sample'), ...sample });
  writeFileSync(join(dir, 'churn.yaml'), readFileSync(DEFAULT_CONFIG_FILE, 'utf8'));
  return { asOf, loaded: loadConfig(join(dir, 'churn.yaml')) };
}
