#!/usr/bin/env node
// `npm run bench -- --customers N`: per-stage wall time, rows per second and peak RSS.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../pipelines/bench.ts');
await main(process.argv);
