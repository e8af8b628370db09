// Local files: a path or glob relative to the config file's folder, read in place.
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { globSync, isDynamicPattern } from 'tinyglobby';
import type { LocalSourceConfig } from '../../config/schema.js';
import { type Landed, type Source, type SourceContext, SourceError } from './source.js';

export class LocalSource implements Source {
  constructor(private readonly config: LocalSourceConfig) {}

  private files(ctx: SourceContext): string[] {
    const pattern = resolve(ctx.baseDir, this.config.path);
    const matches = isDynamicPattern(this.config.path)
      ? globSync(this.config.path, { cwd: ctx.baseDir, absolute: true, onlyFiles: true })
      : existsSync(pattern)
        ? [pattern]
        : [];
    if (matches.length === 0) {
      throw new SourceError(
        `${ctx.entity}: no file matches ${pattern}; check sources.${ctx.entity}.path (relative to the config file's folder)` +
          (ctx.baseDir === process.cwd() ? ' or run `churn sample-data` to create the sample' : ''),
      );
    }
    return matches.sort();
  }

  async land(ctx: SourceContext): Promise<Landed> {
    return {
      files: this.files(ctx).map((path) => ({ path, origin: relative(ctx.baseDir, path) || path })),
      format: this.config.format,
      csv: this.config.csv,
    };
  }

  async check(ctx: SourceContext): Promise<void> {
    this.files(ctx);
  }
}
