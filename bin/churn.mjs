#!/usr/bin/env node
// Entry point of the `churn` CLI: registers tsx so the TypeScript sources run as they are.
import { register } from 'tsx/esm/api';

// Process warnings (e.g. the AWS SDK's Node-version notice) go to stderr as JSON lines like every other log line.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  process.stderr.write(
    `${JSON.stringify({ level: 40, time: Date.now(), msg: `${warning.name}: ${warning.message}` })}\n`,
  );
});

register();
const { main } = await import('../pipelines/cli.ts');
await main(process.argv);
