// One measured process of the bench: spawned, its output collected, its wall time taken from start to exit.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Exited {
  code: number | null;
  /** stdout and stderr, interleaved as they came. */
  output: string;
  wall_ms: number;
}

/** Runs `command args` from the project folder to its exit. */
export async function runToExit(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Exited> {
  const started = performance.now();
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const code = await new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  return { code, output, wall_ms: Math.round(performance.now() - started) };
}
