// A PostgreSQL server for tests: the machine's own when one is reachable (a fresh schema per test run), else an
// embedded one: PGlite (Postgres compiled to WebAssembly) served over the real wire protocol by pglite-socket.
// Either way the code under test talks to a real server through `pg`; nothing is mocked.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const DEFAULT_TEST_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface TestPostgres {
  /** Connection URL whose search_path is the run's fresh schema (unqualified names land there). */
  url: string;
  /** The fresh schema created for this run (dropped by stop()). */
  schema: string;
  /** true when this is the embedded PGlite server. */
  embedded: boolean;
  /** Why the embedded server is used (the machine's server was not reachable, or forceEmbedded). */
  reason?: string;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Skip the machine's server and start the embedded one (to exercise that path). */
  forceEmbedded?: boolean;
  /** Server URL to try first (default: env CHURN_TEST_PG_URL, else postgres://postgres@127.0.0.1:5432/test). */
  url?: string;
}

function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

async function tryConnect(url: string): Promise<pg.Client | string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => {});
    return err instanceof Error ? err.message || String((err as { code?: string }).code) : String(err);
  }
}

async function withSchema(url: string, embedded: boolean, stopServer: () => Promise<void>, reason?: string) {
  if (embedded) {
    // PGlite is one session shared by every connection and ignores the startup `options`: its fresh instance is
    // the isolation, and its tables live in public.
    const result: TestPostgres = { url, schema: 'public', embedded, stop: stopServer };
    if (reason !== undefined) result.reason = reason;
    return result;
  }
  const schema = `churn_test_${randomBytes(5).toString('hex')}`;
  const admin = await tryConnect(url);
  if (typeof admin === 'string') {
    await stopServer();
    throw new Error(`cannot connect to the test PostgreSQL: ${admin}`);
  }
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const result: TestPostgres = {
    url: withSearchPath(url, schema),
    schema,
    embedded,
    stop: async () => {
      const client = await tryConnect(url);
      if (typeof client !== 'string') {
        await client.query(`drop schema if exists ${schema} cascade`).catch(() => {});
        await client.end();
      }
      await stopServer();
    },
  };
  if (reason !== undefined) result.reason = reason;
  return result;
}

/** Starts the embedded server: PGlite behind PGLiteSocketServer on a free port of 127.0.0.1. */
async function startEmbedded(reason: string): Promise<TestPostgres> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 8 });
  await server.start();
  const url = `postgres://postgres@${server.getServerConn()}/postgres`;
  return withSchema(
    url,
    true,
    async () => {
      await server.stop();
      await db.close();
    },
    reason,
  );
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<TestPostgres> {
  if (options.forceEmbedded) return startEmbedded('forceEmbedded');
  const url = options.url ?? process.env.CHURN_TEST_PG_URL ?? DEFAULT_TEST_PG_URL;
  const probe = await tryConnect(url);
  if (typeof probe === 'string') {
    return startEmbedded(`no PostgreSQL reachable at the test URL (${probe})`);
  }
  await probe.end();
  return withSchema(url, false, async () => {});
}
