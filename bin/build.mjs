#!/usr/bin/env node
// `npm run build [-- --out-dir DIR] [--no-check]`: tsc compiles the TypeScript sources to JavaScript (tsconfig.build.json,
// default dist/), and what the code reads at run time is copied beside it in the same layout: sql/, the sample
// generator's pipelines/sample/sql/, the embedded default config, package.json (the version) and the `churn` entry point. `node DIR/bin/churn.mjs`
// (or `node DIR/pipelines/cli.js`) then runs without tsx; the Dockerfile builds the image from it.
// --no-check only emits (tsc --noCheck): the types are checked by `npm run typecheck`, and tests build faster.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const at = args.indexOf('--out-dir');
const outDir = resolve(at >= 0 && args[at + 1] ? args[at + 1] : join(root, 'dist'));
const inside = relative(outDir, root);
if (inside === '' || !inside.startsWith('..')) {
  console.error(`build: the output folder ${outDir} would hold the project itself; choose another --out-dir`);
  process.exit(2);
}

rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const tscArgs = ['-p', join(root, 'tsconfig.build.json'), '--outDir', outDir];
if (args.includes('--no-check')) tscArgs.push('--noCheck');
const compiled = spawnSync(process.execPath, [tsc, ...tscArgs], { stdio: 'inherit' });
if (compiled.status !== 0) process.exit(compiled.status ?? 1);

cpSync(join(root, 'sql'), join(outDir, 'sql'), { recursive: true });
cpSync(join(root, 'pipelines', 'sample', 'sql'), join(outDir, 'pipelines', 'sample', 'sql'), {
  recursive: true,
});
mkdirSync(join(outDir, 'config'), { recursive: true });
cpSync(join(root, 'config', 'default.yaml'), join(outDir, 'config', 'default.yaml'));
cpSync(join(root, 'package.json'), join(outDir, 'package.json'));
mkdirSync(join(outDir, 'bin'), { recursive: true });
cpSync(join(root, 'bin', 'churn.mjs'), join(outDir, 'bin', 'churn.mjs'));
console.log(`build: compiled to ${outDir}`);
