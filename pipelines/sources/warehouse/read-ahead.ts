// Streams a driver's rows to the landing with the next batch already on its way.

/**
 * Batches of rows pulled from `source` ahead of the consumer (at most about `ahead` rows buffered): while the
 * consumer appends one batch, the driver already fetches the next (kysely's stream only asks the cursor for more
 * once the current batch is consumed). Stopping early (break, throw) closes `source`.
 */
export async function* readAhead<T>(source: AsyncIterable<T>, ahead: number): AsyncGenerator<T[]> {
  const it = source[Symbol.asyncIterator]();
  let buffer: T[] = [];
  let finished = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  let space: (() => void) | undefined;
  const pump = (async () => {
    try {
      while (!stopped) {
        const next = await it.next();
        if (next.done) break;
        buffer.push(next.value);
        wake?.();
        while (buffer.length >= ahead && !stopped) await new Promise<void>((resolve) => (space = resolve));
      }
    } catch (error) {
      failure = { error };
    } finally {
      finished = true;
      wake?.();
    }
  })();
  try {
    for (;;) {
      if (buffer.length === 0 && !finished) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      // Let the pump move the rest of the driver's current batch (microtasks) before taking the buffer.
      if (!finished) await new Promise<void>((resolve) => setImmediate(resolve));
      if (failure) throw failure.error;
      if (buffer.length === 0 && finished) return;
      const batch = buffer;
      buffer = [];
      space?.();
      space = undefined;
      yield batch;
    }
  } finally {
    stopped = true;
    space?.();
    await pump;
    await it.return?.();
  }
}
