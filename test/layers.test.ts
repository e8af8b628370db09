// Imports point one way: entry points (CLI, bench) -> orchestration (run, ops) -> stages -> models -> sources,
// sinks, DuckDB, config. Stages (pipelines/stages, report, outcomes) use the models (transforms/), never the other
// way round. Every source file belongs to one layer (by its folder, or by name where a folder holds an entry
// point), and no import reaches a layer above its own. docs/architecture.md draws the same picture.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

const LAYERS = ['entry', 'orchestration', 'stages', 'models', 'base'] as const;
type Layer = (typeof LAYERS)[number];

/** The first entry whose path the file is, or is under, decides its layer. */
const PLACES: readonly [string, Layer][] = [
  // Entry points: the CLI and its commands, the bench.
  ['pipelines/cli.ts', 'entry'],
  ['pipelines/command.ts', 'entry'],
  ['pipelines/init.ts', 'entry'],
  ['pipelines/ops/commands.ts', 'entry'],
  ['pipelines/report/command.ts', 'entry'],
  ['pipelines/bench.ts', 'entry'],
  ['pipelines/bench/', 'entry'],
  ['pipelines/shard/command.ts', 'entry'],
  // Orchestration: one run, the operations around runs, the sample dataset and its quality bench.
  ['pipelines/run/', 'orchestration'],
  ['pipelines/ops/', 'orchestration'],
  ['pipelines/sample/', 'orchestration'],
  ['pipelines/shard/spec.ts', 'base'],
  ['pipelines/shard/', 'orchestration'],
  // Stages: landing, export, catalog, the report, the audience history of the outcomes.
  ['pipelines/stages/', 'stages'],
  ['pipelines/report/', 'stages'],
  ['pipelines/outcomes/', 'stages'],
  // Models: the SQL and TypeScript models, their yml, parameters and gates.
  ['transforms/', 'models'],
  // Base: sources, sinks, DuckDB, logging, the event stream, statistics, config.
  ['pipelines/sources/', 'base'],
  ['pipelines/sinks/', 'base'],
  ['pipelines/fit/', 'base'],
  ['pipelines/base/', 'base'],
  ['config/', 'base'],
];

function layerOf(file: string): Layer | undefined {
  return PLACES.find(([place]) => file === place || (place.endsWith('/') && file.startsWith(place)))?.[1];
}

function sourceFiles(): string[] {
  return ['pipelines', 'transforms', 'config'].flatMap((dir) =>
    readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(dir, f)),
  );
}

/** The project files a file imports (static, dynamic and type-only imports and re-exports). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true);
  return info.importedFiles
    .map((i) => i.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => normalize(join(dirname(file), name)).replace(/\.js$/, '.ts'));
}

describe('layers', () => {
  const files = sourceFiles();

  it('places every source file in a layer', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.filter((f) => layerOf(f) === undefined)).toEqual([]);
  });

  it('never imports from a layer above', () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = LAYERS.indexOf(layerOf(file)!);
      for (const target of importsOf(file)) {
        const layer = layerOf(target);
        if (layer !== undefined && LAYERS.indexOf(layer) < from) {
          upward.push(`${file} (${LAYERS[from]}) imports ${relative('.', target)} (${layer})`);
        }
      }
    }
    expect(upward).toEqual([]);
  });

  it('can tell an upward import', () => {
    // The rule itself, on a known pair: the gates reading the export stage's table list was the old cycle.
    expect(LAYERS.indexOf(layerOf('pipelines/stages/export.ts')!)).toBeLessThan(
      LAYERS.indexOf(layerOf('transforms/checks.ts')!),
    );
    expect(importsOf('transforms/checks.ts')).not.toContain('pipelines/stages/export.ts');
    expect(importsOf('pipelines/stages/export.ts')).toContain('transforms/metadata.ts');
  });
});
