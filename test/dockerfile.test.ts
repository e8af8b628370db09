// The container image, checked where no Docker engine runs: the Dockerfile is linted (dockerfile-utils, the
// Docker language server's validator) and its structure checked (dockerfile-ast): a multi-stage build on
// Node >= 22 whose runtime stage holds the JavaScript tsc compiled and the production dependencies only, runs as
// a user other than root and has `churn` as its entry point. `.dockerignore` lets in what the build copies and
// keeps out node_modules, .git, data and outputs. Then the build the image runs (tsc -p tsconfig.build.json,
// bin/build.mjs) is run into a temporary folder and the compiled CLI is run: --version, and a whole run on a
// small sample, so the SQL files and the default config are found from the compiled code.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { type Copy, DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import picomatch from 'picomatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram, packageVersion } from '../pipelines/cli.js';
import { publishedModels } from '../transforms/metadata.js';
import { loadMacros, loadModels } from '../transforms/runner.js';

const ROOT = join(import.meta.dirname, '..');
const TEXT = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(TEXT);

interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

/** The value of a build argument declared before the first FROM. */
function initialArg(name: string): string | undefined {
  const arg = dockerfile.getInitialARGs().find((a) => a.getProperty()?.getName() === name);
  return arg?.getProperty()?.getValue() ?? undefined;
}

function stages(): Stage[] {
  const result: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = dockerfile
        .getFROMs()
        .find((f) => f.getRange().start.line === instruction.getRange().start.line);
      const image = (from?.getImage() ?? '').replace(
        /\$\{?(\w+)\}?/g,
        (_m, v: string) => initialArg(v) ?? '',
      );
      result.push({ name: from?.getBuildStage() ?? '', image, instructions: [] });
    } else {
      result.at(-1)?.instructions.push(instruction);
    }
  }
  return result;
}

function runs(stage: Stage): string[] {
  return stage.instructions.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
}

function copies(stage: Stage): { from: string | null; sources: string[]; dest: string }[] {
  return stage.instructions
    .filter((i) => i.getKeyword() === 'COPY')
    .map((i) => {
      const args = i.getArguments().map((a) => a.getValue());
      return {
        from: (i as Copy).getFromFlag()?.getValue() ?? null,
        sources: args.slice(0, -1).filter((a) => !a.startsWith('--')),
        dest: args.at(-1) ?? '',
      };
    });
}

function majorOf(version: string): number {
  return Number(/(\d+)/.exec(version)?.[1] ?? Number.NaN);
}

/** .dockerignore semantics: the last matching rule wins; a rule matching a folder covers what is inside it. */
function dockerIgnored(path: string): boolean {
  const rules = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => ({
      negate: l.startsWith('!'),
      match: picomatch(l.replace(/^!/, '').replace(/\/$/, ''), { dot: true }),
    }));
  const parts = path.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) if (prefixes.some((p) => rule.match(p))) ignored = !rule.negate;
  return ignored;
}

describe('Dockerfile', () => {
  it('passes the Dockerfile linter', () => {
    const problems = lintDockerfile(TEXT).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('is a multi-stage build on Node.js 22 or newer, and .nvmrc and engines agree', () => {
    const all = stages();
    expect(all.map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
    for (const stage of all) {
      expect(stage.image, stage.name).toMatch(/^node:\d+/);
      expect(majorOf(stage.image.split(':')[1] ?? ''), stage.image).toBeGreaterThanOrEqual(22);
    }
    const node = majorOf(initialArg('NODE_VERSION') ?? '');
    expect(node).toBeGreaterThanOrEqual(22);
    expect(majorOf(readFileSync(join(ROOT, '.nvmrc'), 'utf8'))).toBe(node);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
      scripts: Record<string, string>;
    };
    expect(pkg.engines.node).toMatch(/^>=\s*(\d+)/);
    expect(majorOf(pkg.engines.node)).toBeLessThanOrEqual(node);
    expect(pkg.scripts.build).toBe('node bin/build.mjs');
  });

  it('compiles the TypeScript with tsc in the build stage and installs production dependencies only', () => {
    const [build, deps] = stages();
    if (!build || !deps) throw new Error('stages missing');
    expect(runs(build).some((r) => /^npm ci\b/.test(r))).toBe(true);
    expect(runs(build)).toContain('npm run build');
    const copied = copies(build).flatMap((c) => c.sources);
    for (const needed of [
      'tsconfig.json',
      'tsconfig.build.json',
      'pipelines',
      'transforms',
      'config',
      'sql',
      'bin',
    ]) {
      expect(copied).toContain(needed);
    }
    expect(runs(deps).some((r) => /^npm ci\b.*--omit=dev/.test(r))).toBe(true);
    const tsconfig = readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8');
    expect(tsconfig).toMatch(/"outDir": "dist"/);
  });

  it('runs the compiled JavaScript with churn as the entry point, as a user other than root', () => {
    const runtime = stages().at(-1);
    if (!runtime) throw new Error('no runtime stage');
    const copied = copies(runtime);
    // Nothing from the build context: only what the other stages made.
    expect(copied.every((c) => c.from !== null)).toBe(true);
    expect(copied).toContainEqual({ from: 'deps', sources: ['/app/node_modules'], dest: './node_modules' });
    expect(copied).toContainEqual({ from: 'build', sources: ['/src/dist'], dest: './' });
    expect(runs(runtime).join('\n')).toContain('ln -s /app/bin/churn.mjs /usr/local/bin/churn');
    const keywords = runtime.instructions.map((i) => i.getKeyword());
    const user = runtime.instructions
      .filter((i) => i.getKeyword() === 'USER')
      .at(-1)
      ?.getArgumentsContent();
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user?.split(':')[0]);
    expect(keywords.lastIndexOf('USER')).toBeLessThan(keywords.indexOf('ENTRYPOINT'));
    const entrypoints = dockerfile.getENTRYPOINTs();
    expect(entrypoints).toHaveLength(1);
    expect(entrypoints[0]?.getJSONStrings().map((s) => s.getJSONValue())).toEqual(['churn']);
  });

  it('.dockerignore sends what the build copies and keeps the rest out', () => {
    for (const stage of stages()) {
      for (const copy of copies(stage).filter((c) => c.from === null)) {
        for (const source of copy.sources) {
          expect(existsSync(join(ROOT, source)), source).toBe(true);
          expect(dockerIgnored(source), source).toBe(false);
          expect(dockerIgnored(`${source}/x.ts`), `${source}/x.ts`).toBe(false);
        }
      }
    }
    for (const kept of [
      'node_modules/pino/package.json',
      '.git/HEAD',
      'out/current/x.parquet',
      'data/sample/orders.csv',
    ]) {
      expect(dockerIgnored(kept), kept).toBe(true);
    }
    for (const kept of [
      '.churn/ledger.jsonl',
      'dist/pipelines/cli.js',
      'test/e2e.test.ts',
      'churn.yaml',
      '.env',
    ]) {
      expect(dockerIgnored(kept), kept).toBe(true);
    }
  });

  it('is used by examples/docker-compose.yaml with commands churn has', () => {
    const compose = parse(readFileSync(join(ROOT, 'examples', 'docker-compose.yaml'), 'utf8'), {
      merge: true,
    }) as {
      services: Record<
        string,
        { build?: { context: string; dockerfile: string }; image: string; command: string[] }
      >;
    };
    const commands = new Set(buildProgram().commands.map((c) => c.name()));
    const services = Object.values(compose.services);
    expect(services.length).toBeGreaterThan(0);
    for (const service of services) {
      expect(service.image).toBe('churn-pipeline:latest');
      expect(
        service.build && existsSync(join(ROOT, 'examples', service.build.context, service.build.dockerfile)),
      ).toBe(true);
      expect(commands.has(service.command[0] ?? '')).toBe(true);
    }
  });
});

describe('the compiled CLI (what the image runs)', () => {
  let dist: string;
  let work: string;
  const node = (args: string[], cwd = ROOT) =>
    spawnSync(process.execPath, args, {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, CHURN_LOG_FORMAT: 'json' },
    });

  beforeAll(() => {
    const temp = mkdtempSync(join(tmpdir(), 'churn-dist-'));
    dist = join(temp, 'dist');
    work = join(temp, 'work');
    // Types are checked by `npm run typecheck`; the image's build checks them too.
    const built = node([join(ROOT, 'bin', 'build.mjs'), '--out-dir', dist, '--no-check']);
    expect(built.status, built.stderr + built.stdout).toBe(0);
    // The image's /app/node_modules.
    symlinkSync(join(ROOT, 'node_modules'), join(dist, 'node_modules'), 'dir');
  }, 120_000);

  afterAll(() => {
    if (dist) rmSync(join(dist, '..'), { recursive: true, force: true });
  });

  it('is JavaScript only, with sql/, the default config and package.json beside it', () => {
    const files = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter(
      (f) => !f.startsWith('node_modules'),
    );
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(files).toContain(join('pipelines', 'cli.js'));
    expect(files).toContain(join('bin', 'churn.mjs'));
    expect(files).toContain(join('config', 'default.yaml'));
    expect(files).toContain('package.json');
    const sql = files.filter((f) => f.startsWith(`sql/`) && f.endsWith('.sql'));
    const sources = readdirSync(join(ROOT, 'sql'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.sql'),
    );
    expect(sql.map((f) => relative('sql', f)).sort()).toEqual(sources.sort());
  });

  it('prints its version with node dist/pipelines/cli.js --version and through bin/churn.mjs', () => {
    for (const entry of [join(dist, 'pipelines', 'cli.js'), join(dist, 'bin', 'churn.mjs')]) {
      const result = node([entry, '--version']);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain(`churn-pipeline ${packageVersion()}`);
    }
  });

  it('finds the models, their yml and the macros from the compiled code', async () => {
    const script = `import { loadModels, loadMacros } from ${JSON.stringify(join(dist, 'transforms', 'runner.js'))};
      import { publishedModels } from ${JSON.stringify(join(dist, 'transforms', 'metadata.js'))};
      const models = await loadModels();
      console.log(JSON.stringify({ models: models.length, macros: loadMacros().length, published: publishedModels().length }));`;
    const result = node(['--input-type=module', '-e', script]);
    expect(result.status, result.stderr).toBe(0);
    const models = await loadModels();
    expect(JSON.parse(result.stdout)).toEqual({
      models: models.length,
      macros: loadMacros().length,
      published: publishedModels().length,
    });
    expect(models.length).toBeGreaterThan(10);
  });

  it('runs the pipeline end to end on a small sample', () => {
    const churn = join(dist, 'bin', 'churn.mjs');
    const sample = node(
      [churn, 'sample-data', '--dir', join(work, 'data', 'sample'), '--customers', '80'],
      ROOT,
    );
    expect(sample.status, sample.stderr).toBe(0);
    const meta = JSON.parse(readFileSync(join(work, 'data', 'sample', 'meta.json'), 'utf8')) as {
      as_of: string;
    };
    // The embedded default config reads data/sample/ below the working directory, as in the image's /work.
    const run = node([churn, 'run', '--as-of', meta.as_of], work);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain(`as of ${meta.as_of} succeeded`);
    expect(existsSync(join(work, 'out', 'current', 'customer_health'))).toBe(true);
  });
});
