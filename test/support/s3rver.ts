// Starts a real s3rver (fake S3 over HTTP on 127.0.0.1) in a child Node process for the S3 tests.
//
// Why a child process: s3rver's paginated listing encrypts continuation tokens with DES, which OpenSSL 3
// only offers with `--openssl-legacy-provider`. Starting the server in its own process with that flag keeps
// vitest's process untouched. The child exits when its stdin closes, so it never outlives the test run.
// Credentials for s3rver are S3RVER / S3RVER; clients must use path-style addressing.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, vi } from 'vitest';
import { createS3Client } from '../../pipelines/base/s3client.js';

export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** The environment that the standard credential chain reads s3rver's fixed keys from; nothing else may answer. */
export const S3RVER_ENV = {
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_SESSION_TOKEN: '',
  AWS_PROFILE: '',
  AWS_EC2_METADATA_DISABLED: 'true',
} as const;

/** Puts S3RVER_ENV into this process's environment (vi.unstubAllEnvs() takes it out again). */
export function stubS3rverEnv(): void {
  for (const [key, value] of Object.entries(S3RVER_ENV)) vi.stubEnv(key, value);
}

/** A path-style client of a server (`maxAttempts` tries a request; the product's default without it). */
export function s3rverClient(server: { endpoint: string }, maxAttempts?: number): S3Client {
  return createS3Client({
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    maxAttempts,
  });
}

export interface S3rverHandle {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly port: number;
  /** The folder s3rver stores buckets in; reuse it to restart a server with the same contents. */
  readonly directory: string;
  /** Stops the server gracefully and waits for the process to exit. */
  stop(): Promise<void>;
  /** Kills the server at once (SIGKILL), as a crashed or unreachable endpoint; waits for the exit. */
  kill(): Promise<void>;
}

export interface StartOptions {
  /** Storage folder; a new temp folder when absent. */
  directory?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Buckets created before the server accepts requests. */
  buckets?: string[];
}

const CHILD_SCRIPT = `
const [modulePath, optionsJson] = process.argv.slice(1);
const S3rver = require(modulePath);
const { directory, port, buckets } = JSON.parse(optionsJson);
const server = new S3rver({
  address: '127.0.0.1',
  port,
  directory,
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
});
server.run().then(
  (address) => process.stdout.write(JSON.stringify({ port: address.port }) + '\\n'),
  (error) => { process.stderr.write(String(error && error.stack || error) + '\\n'); process.exit(1); },
);
const stop = () => server.close().then(() => process.exit(0), () => process.exit(0));
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
`;

export async function startS3rver(options: StartOptions = {}): Promise<S3rverHandle> {
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 's3rver-')));
  const modulePath = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(
    process.execPath,
    [
      '--openssl-legacy-provider',
      '-e',
      CHILD_SCRIPT,
      modulePath,
      JSON.stringify({ directory, port: options.port ?? 0, buckets: options.buckets ?? [] }),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 15 s: ${stderr}`)), 15_000);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { port: number }).port);
      } catch {
        reject(new Error(`unexpected s3rver output: ${line}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with code ${code} before listening: ${stderr}`));
    });
    child.once('error', reject);
  });

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    directory,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.stdin?.end();
      await exited;
    },
    kill: async () => {
      killNow(child);
      await exited;
    },
  };
}

function killNow(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** A server and its client for the tests of a file: started before them (its keys in the environment), stopped after. */
export interface S3rverForTests {
  readonly server: S3rverHandle;
  readonly client: S3Client;
}

/**
 * Starts a server with `buckets` before the file's tests and stops it after. Generous attempts by default: s3rver
 * closes idle keep-alive connections, and a request may race that close.
 */
export function s3rverForTests(buckets: string[], maxAttempts = 5): S3rverForTests {
  let server: S3rverHandle | undefined;
  let client: S3Client | undefined;
  beforeAll(async () => {
    stubS3rverEnv();
    server = await startS3rver({ buckets });
    client = s3rverClient(server, maxAttempts);
  }, 30_000);
  afterAll(async () => {
    client?.destroy();
    await server?.stop();
    vi.unstubAllEnvs();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the S3 server is started in beforeAll: use it inside a test');
    return value;
  };
  return {
    get server() {
      return started(server);
    },
    get client() {
      return started(client);
    },
  };
}
