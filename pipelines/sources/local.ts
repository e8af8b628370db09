// Local files: a path or glob relative to the config file's folder, read in place. A `.gz` file is verified end to
// end before it is read (DuckDB reads a truncated gzip stream up to where it breaks and reports no error).
import { existsSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { globSync, isDynamicPattern } from 'tinyglobby';
import type { LocalSourceConfig } from '../../config/schema.js';
import { parseExpression } from './expression.js';
import { isGzipName, verifyGzip } from './files.js';
import { type Landed, type Source, type SourceContext, SourceError } from './source.js';

export class LocalSource implements Source {
  constructor(private readonly config: LocalSourceConfig) {}

  private files(ctx: SourceContext): string[] {
    const pattern = resolve(ctx.baseDir, this.config.path);
    const key = `sources.${ctx.entity}.path`;
    if (!isDynamicPattern(this.config.path) && existsSync(pattern) && statSync(pattern).isDirectory()) {
      const glob = join(this.config.path, this.config.format === 'csv' ? '*.csv' : `*.${this.config.format}`);
      throw new SourceError(
        `${ctx.entity}: ${key} "${this.config.path}" is a folder, not a file; give a file, or a glob of the files to read such as "${glob}"`,
      );
    }
    const matches = isDynamicPattern(this.config.path)
      ? globSync(this.config.path, { cwd: ctx.baseDir, absolute: true, onlyFiles: true })
      : existsSync(pattern)
        ? [pattern]
        : [];
    if (matches.length === 0) {
      throw new SourceError(
        `${ctx.entity}: no file matches ${pattern}; check ${key} (relative to the config file's folder)` +
          (ctx.baseDir === process.cwd() ? ' or run `churn sample-data` to create the sample' : ''),
      );
    }
    return matches.sort();
  }

  async land(ctx: SourceContext): Promise<Landed> {
    const files = this.files(ctx).map((path) => ({ path, origin: relative(ctx.baseDir, path) || path }));
    for (const file of files) {
      if (isGzipName(file.path)) await verifyGzip(file.path, file.origin, ctx.entity);
    }
    return { files, format: this.config.format, csv: this.config.csv };
  }

  async check(ctx: SourceContext): Promise<void> {
    this.files(ctx);
    if (this.config.where) await parseExpression(undefined, this.config.where, `sources.${ctx.entity}.where`);
  }
}
