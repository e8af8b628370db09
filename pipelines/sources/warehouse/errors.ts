// A warehouse problem in the user's terms: what failed, where (the connection URL without its password), and what
// to check. The connection URL holds a password: it never reaches a message.
import type { Entity } from '../../../config/schema.js';
import { SourceError } from '../source.js';
import type { ProblemKind } from './dialect.js';

/** The connection URL without its password, for messages: `postgres://user@host:5432/db`. */
export function redactedLocation(connection: string): string {
  try {
    const url = new URL(connection);
    const user = url.username ? `${decodeURIComponent(url.username)}@` : '';
    return `${url.protocol}//${user}${url.host}${url.pathname}`;
  } catch {
    return '(connection URL not parseable)';
  }
}

export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

export function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorMessage(err.errors[0]);
  if (err instanceof Error) return err.message || errorCode(err) || err.name;
  return String(err);
}

/** A SourceError naming the entity, the origin and the location, with the password masked should a driver echo it. */
export function sourceError(
  entity: Entity,
  origin: string,
  connection: string,
  problem: string,
): SourceError {
  let message = `${entity} source (${origin} at ${redactedLocation(connection)}): ${problem}`;
  // A driver message never contains the password, but make sure.
  try {
    const password = decodeURIComponent(new URL(connection).password);
    if (password.length >= 3) message = message.split(password).join('***');
  } catch {
    // not a URL: already reported when connecting
  }
  return new SourceError(message);
}

/**
 * What a driver error means, in the user's terms. `kind` is the dialect's reading of its error code; the network
 * errors are Node's own.
 */
export function describeProblem(
  err: unknown,
  kind: ProblemKind | undefined,
  target: { schema: string | undefined; table: string | undefined },
): string {
  const code = errorCode(err);
  const message = errorMessage(err);
  const { schema, table } = target;
  const what = table === undefined ? 'the query' : `table ${schema ? `${schema}.` : ''}${table}`;
  switch (kind) {
    case 'credentials':
      return `bad credentials: ${message}; check the user and password of the connection`;
    case 'database':
      return `unknown database: ${message}`;
    case 'schema':
      return `unknown schema "${schema ?? ''}": ${message}`;
    case 'table':
      return `unknown table: ${what} does not exist (${message})`;
    case 'column':
      return `unknown column: ${message}`;
    case 'permission':
      return `permission denied on ${what}: ${message}`;
    case 'syntax':
      return `SQL syntax error in ${what}: ${message}`;
    case undefined:
      break;
  }
  switch (code) {
    case 'ECONNREFUSED':
      return 'cannot connect: connection refused (is the server running and the host/port right?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'cannot connect: unknown host';
    case 'ETIMEDOUT':
      return 'cannot connect: connection timed out';
    default:
      return `${message}${code ? ` (${code})` : ''}`;
  }
}
