// What every `churn` command shares: the global options, loading the config and the logger, argument parsers.
import { type Command, InvalidArgumentError } from 'commander';
import { type LoadedConfig, loadConfig } from '../config/load.js';
import {
  createLogger,
  type LogFormat,
  type Logger,
  type ProgressListener,
  progressListener,
} from './base/log.js';
import { validateAsOf } from './run/dates.js';

export interface GlobalOptions {
  config?: string;
  logLevel?: string;
  logFormat?: LogFormat;
}

/** The logger the global options ask for (--log-level, --log-format); secrets are never printed. */
export function commandLogger(cmd: Command, secrets: readonly string[] = []): Logger {
  const opts = cmd.optsWithGlobals<GlobalOptions>();
  return createLogger({ level: opts.logLevel, format: opts.logFormat, secrets });
}

/**
 * Loads the config named by --config (or the embedded default), a logger that never prints its secrets, and
 * the listener that draws the progress of the long stages on a terminal (undefined elsewhere).
 */
export function setup(cmd: Command): { loaded: LoadedConfig; log: Logger; onProgress?: ProgressListener } {
  const opts = cmd.optsWithGlobals<GlobalOptions>();
  const loaded = loadConfig(opts.config);
  const log = commandLogger(cmd, loaded.secrets);
  return { loaded, log, onProgress: progressListener(log) };
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
