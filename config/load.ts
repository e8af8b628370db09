// Loads the YAML config: parse, interpolate ${VAR} secrets from the environment, validate with zod.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { type Config, configSchema } from './schema.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the config file (or of the embedded default). */
  file: string;
  /** Folder that relative paths in the config are resolved against. */
  baseDir: string;
  /** Values taken from the environment: never to be logged. */
  secrets: string[];
}

export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL('./default.yaml', import.meta.url));

/** Replaces `${VAR}` in every string value; a missing variable is an error that names the key. */
function interpolate(value: unknown, path: string[], secrets: string[], env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const found = env[name];
      if (found === undefined) {
        throw new ConfigError(
          `config key "${path.join('.')}" uses \${${name}}, but the environment variable ${name} is not set; export it before running`,
        );
      }
      secrets.push(found);
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...path, String(i)], secrets, env));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, [...path, k], secrets, env)]),
    );
  }
  return value;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node: unknown = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Every problem on one line, separated by "; ": the key's path, the value found, what is expected. */
export function formatIssues(error: z.ZodError, raw: unknown, secrets: readonly string[]): string {
  return error.issues
    .map((issue) => {
      const key = issue.path.length ? issue.path.join('.') : '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const where = issue.path.length ? `under "${key}"` : 'at the top level';
        return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')} ${where}: remove or fix the spelling`;
      }
      let found = describe(valueAt(raw, issue.path));
      for (const secret of secrets) if (secret) found = found.split(secret).join('***');
      return `config key "${key}": found ${found}, ${issue.message.replace(/^Invalid (input|option): /, '')}`;
    })
    .map((line) => line.replace(/\s+/g, ' ').trim())
    .join('; ');
}

export function parseConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): { config: Config; secrets: string[] } {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    // The yaml library's message carries a code frame on the lines after the first: keep the first line.
    const first = doc.errors[0];
    const reason = ((first?.message ?? '').split('\n')[0] ?? '').trim().replace(/:$/, '');
    throw new ConfigError(`${file} is not valid YAML: ${reason}; fix the file, then run again`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const secrets: string[] = [];
  const interpolated = interpolate(raw, [], secrets, env);
  const result = configSchema.safeParse(interpolated);
  if (!result.success) {
    throw new ConfigError(
      `${file} has ${result.error.issues.length} problem(s): ${formatIssues(result.error, interpolated, secrets)}`,
    );
  }
  return { config: result.data, secrets };
}

export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const path = resolve(file ?? DEFAULT_CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `cannot read config file ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}); pass an existing file with --config`,
    );
  }
  const { config, secrets } = parseConfig(text, path, env);
  // The embedded default resolves its relative paths against the working directory (the project root for
  // `npm start`); a user's config resolves them against its own folder.
  const baseDir = file === undefined ? process.cwd() : dirname(path);
  return { config, file: path, baseDir, secrets };
}

export function resolvePath(loaded: Pick<LoadedConfig, 'baseDir'>, path: string): string {
  return isAbsolute(path) ? path : resolve(loaded.baseDir, path);
}
