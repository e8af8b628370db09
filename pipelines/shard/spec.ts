// Which customer-hash shard a process builds: `--shard I/N`, or `--shards N` with the index from the engine that
// started it (Kubernetes Indexed Jobs set JOB_COMPLETION_INDEX, AWS Batch array jobs AWS_BATCH_JOB_ARRAY_INDEX).
import type { Entity } from '../../config/schema.js';

/** The entities whose rows have a key of their own: a shard keeps a key's rows wherever one of them is its own. */
export const DEDUPLICATION_KEYS: Readonly<Partial<Record<Entity, string>>> = {
  orders: 'order_id',
  subscriptions: 'subscription_id',
  surveys: 'response_id',
  tickets: 'ticket_id',
  invoices: 'invoice_id',
};

export class ShardError extends Error {
  override readonly name = 'ShardError';
}

export interface ShardSpec {
  /** 0-based: shard I of N holds the customers whose hash modulo N is I. */
  index: number;
  count: number;
}

/**
 * Which rows a source that filters by shard itself extracts (docs/shards.md, "Inputs"): the shard's customers'
 * (`customer`), also every row without a customer_id (`customer-or-no-customer`: e-mail events), or also every row
 * of a key that names customers of two shards (`customer-or-shared-key`: the deduplicated entities).
 */
export type ShardFilterKind = 'customer' | 'customer-or-no-customer' | 'customer-or-shared-key';

/** The environment variables that carry the index of an array job, in the order they are looked at. */
export const INDEX_VARIABLES = ['JOB_COMPLETION_INDEX', 'AWS_BATCH_JOB_ARRAY_INDEX'] as const;

/** The largest shard count: more shards than this cost more in re-reading inputs than they save. */
export const MAX_SHARDS = 1024;

function wholeNumber(text: string, what: string): number {
  if (!/^\d+$/.test(text.trim())) throw new ShardError(`${what} "${text}" is not a whole number`);
  return Number(text.trim());
}

export function shardCount(text: string, what = '--shards'): number {
  const count = wholeNumber(text, what);
  if (count < 1 || count > MAX_SHARDS) {
    throw new ShardError(`${what} is ${count}; give a shard count from 1 to ${MAX_SHARDS}`);
  }
  return count;
}

function checked(index: number, count: number, from: string): ShardSpec {
  if (index >= count) {
    throw new ShardError(
      `${from} is shard ${index}, but there are only ${count} shards (0 to ${count - 1}); run shards 0 to ${count - 1}`,
    );
  }
  return { index, count };
}

/** `I/N` as `--shard` gives it: shard I (0-based) of N. */
export function parseShard(text: string): ShardSpec {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!match)
    throw new ShardError(`--shard "${text}" is not I/N; give e.g. --shard 0/4 (shards 0 to 3 of 4)`);
  return checked(Number(match[1]), shardCount(match[2] ?? '', '--shard count'), `--shard ${text.trim()}`);
}

/**
 * The shard of this process: `--shard I/N`, or `--shards N` with the index from the environment. Undefined when
 * neither option is given (a single-node run).
 */
export function resolveShard(
  options: { shard?: string; shards?: string | number },
  env: NodeJS.ProcessEnv = process.env,
): ShardSpec | undefined {
  if (options.shard !== undefined) {
    const spec = parseShard(options.shard);
    if (options.shards !== undefined && shardCount(String(options.shards)) !== spec.count) {
      throw new ShardError(
        `--shard ${options.shard} and --shards ${options.shards} disagree on the shard count; give one of them`,
      );
    }
    return spec;
  }
  if (options.shards === undefined) return undefined;
  const count = shardCount(String(options.shards));
  for (const name of INDEX_VARIABLES) {
    const value = env[name];
    if (value !== undefined && value !== '') return checked(wholeNumber(value, name), count, name);
  }
  throw new ShardError(
    `--shards ${count} needs the shard index: give --shard I/${count}, or run as a Kubernetes Indexed Job ` +
      '(JOB_COMPLETION_INDEX) or an AWS Batch array job (AWS_BATCH_JOB_ARRAY_INDEX)',
  );
}
