// Chooses the Sink implementation for the output config.
import type { LoadedConfig } from '../../config/load.js';
import { resolvePath } from '../../config/load.js';
import type { StageEvents } from '../base/events.js';
import type { Logger } from '../base/log.js';
import { LocalSink } from './local.js';
import type { Sink, StagedRun } from './sink.js';

export interface SinkWithStaging {
  sink: Sink;
  /** Local folder for staging runs and the catalog (the output folder itself for a local sink). */
  localRoot: string;
  close(): Promise<void>;
}

/**
 * An S3 output with a local copy: the run is published to S3 first (the copy BI tools read), then to the
 * local folder, which the catalog file reads and which keeps the staging area on one file system. Each keeps its
 * own guarantees (see s3.ts and local.ts); the local copy's publish steps are named `mirror-<step>`.
 */
class MirroredSink implements Sink {
  constructor(
    private readonly remote: Sink,
    private readonly local: LocalSink,
  ) {}

  get location(): string {
    return this.remote.location;
  }

  async publish(run: StagedRun, log: Logger): Promise<void> {
    await this.remote.publish(run, log);
    const events = run.events;
    const mirrored: StageEvents | undefined = events && {
      emit: (event) =>
        events.emit(event.type === 'step' ? { ...event, step: `mirror-${event.step}` } : event),
    };
    await this.local.publish({ ...run, events: mirrored }, log);
  }

  history(table: string, from: string, to: string, scratchDir: string) {
    return this.remote.history(table, from, to, scratchDir);
  }

  async isPublished(asOf: string): Promise<boolean> {
    return (await this.remote.isPublished?.(asOf)) ?? false;
  }

  async recover(log: Logger): Promise<void> {
    await this.remote.recover(log);
    await this.local.recover(log);
  }

  async check(): Promise<void> {
    await this.remote.check();
    await this.local.check();
  }
}

export async function createSink(loaded: LoadedConfig): Promise<SinkWithStaging> {
  const output = loaded.config.output;
  switch (output.type) {
    case 'local': {
      const root = resolvePath(loaded, output.path);
      return { sink: new LocalSink(root), localRoot: root, close: async () => {} };
    }
    case 's3': {
      const { S3Sink } = await import('./s3.js');
      const remote = new S3Sink(output);
      const root = resolvePath(loaded, output.local_path);
      return {
        sink: new MirroredSink(remote, new LocalSink(root)),
        localRoot: root,
        close: () => remote.close(),
      };
    }
  }
}
