#!/usr/bin/env node
// Entry point of the `churn` CLI: registers tsx so the TypeScript sources run as they are.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../pipelines/cli.ts');
await main(process.argv);
