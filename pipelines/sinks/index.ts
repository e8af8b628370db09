// Chooses the Sink implementation for the output config.
import type { LoadedConfig } from '../../config/load.js';
import { resolvePath } from '../../config/load.js';
import { LocalSink } from './local.js';
import { type Sink, SinkError } from './sink.js';

export interface SinkWithStaging {
  sink: Sink;
  /** Local folder for staging runs and the catalog (the output folder itself for a local sink). */
  localRoot: string;
}

export async function createSink(loaded: LoadedConfig): Promise<SinkWithStaging> {
  const output = loaded.config.output;
  switch (output.type) {
    case 'local': {
      const root = resolvePath(loaded, output.path);
      return { sink: new LocalSink(root), localRoot: root };
    }
    default:
      throw new SinkError(`output type "${output.type}" is not available in this build`);
  }
}
