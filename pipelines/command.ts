// What every `churn` command shares: the global options, loading the config and the logger, argument parsers.
import { type Command, InvalidArgumentError } from 'commander';
import { type LoadedConfig, loadConfig } from '../config/load.js';
import { createLogger, type Logger } from './log.js';
import { validateAsOf } from './run.js';

export interface GlobalOptions {
  config?: string;
  logLevel?: string;
}

/** Loads the config named by --config (or the embedded default) and a logger that never prints its secrets. */
export function setup(cmd: Command): { loaded: LoadedConfig; log: Logger } {
  const opts = cmd.optsWithGlobals<GlobalOptions>();
  const loaded = loadConfig(opts.config);
  const log = createLogger({ level: opts.logLevel, secrets: loaded.secrets });
  return { loaded, log };
}

export function parseDateArg(value: string): string {
  try {
    return validateAsOf(value);
  } catch {
    throw new InvalidArgumentError('expected a date as YYYY-MM-DD');
  }
}

export function parseIntArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}
