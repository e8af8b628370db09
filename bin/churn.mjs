#!/usr/bin/env node
// Entry point of the `churn` CLI. In a clone it runs the TypeScript sources as they are, through tsx; in the
// container image (and in any `npm run build` output, where this file sits beside the compiled JavaScript) it
// runs the JavaScript that tsc compiled.
import { existsSync } from 'node:fs';

const source = new URL('../pipelines/cli.ts', import.meta.url);

async function fromSource() {
  const { register } = await import('tsx/esm/api');
  register();
  return import(source.href);
}

const { main } = existsSync(source) ? await fromSource() : await import('../pipelines/cli.js');
await main(process.argv);
