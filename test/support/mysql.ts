// A MySQL/MariaDB server for tests: the machine's own (a fresh database per test run). There is no embedded
// MySQL: when none is reachable the caller skips its MySQL tests and says why.
import { randomBytes } from 'node:crypto';
import { type Connection, createConnection } from 'mysql2/promise';

export const DEFAULT_TEST_MYSQL_URL = 'mysql://root@127.0.0.1:3306/test';

export type TestMysql =
  | {
      available: true;
      /** Connection URL of the run's fresh database. */
      url: string;
      database: string;
      /** Opens a client on the run's database (session time zone UTC). */
      connect(): Promise<Connection>;
      stop(): Promise<void>;
    }
  | { available: false; reason: string };

async function tryConnect(url: string): Promise<Connection | string> {
  try {
    return await createConnection({ uri: url, connectTimeout: 3000 });
  } catch (err) {
    const e = err as { message?: string; code?: string };
    return e.message || e.code || String(err);
  }
}

export async function startMysql(options: { url?: string } = {}): Promise<TestMysql> {
  const url = options.url ?? process.env.CHURN_TEST_MYSQL_URL ?? DEFAULT_TEST_MYSQL_URL;
  const admin = await tryConnect(url);
  if (typeof admin === 'string') {
    const shown = new URL(url);
    shown.password = '';
    return {
      available: false,
      reason: `no MySQL/MariaDB reachable at ${shown.toString()} (${admin}); set CHURN_TEST_MYSQL_URL to run these tests`,
    };
  }
  const database = `churn_test_${randomBytes(5).toString('hex')}`;
  await admin.query(`create database ${database}`);
  await admin.end();
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${database}`;
  return {
    available: true,
    url: dbUrl.toString(),
    database,
    connect: async () => {
      const conn = await createConnection({ uri: dbUrl.toString() });
      await conn.query("set time_zone = '+00:00'");
      return conn;
    },
    stop: async () => {
      const conn = await tryConnect(url);
      if (typeof conn !== 'string') {
        await conn.query(`drop database if exists ${database}`).catch(() => {});
        await conn.end();
      }
    },
  };
}
