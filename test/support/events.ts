// The events of a publish that runs without a run (the sink tests): the steps it reaches, and a stop at one of them
// (an error thrown where a kill would stop the process).
import { EventStream, type StageEvent } from '../../pipelines/base/events.js';

/** Records each step a publish reaches in `seen` and throws `stopped at <step>` at `step`. */
export function stopAtStep(step: string, seen: string[] = []): EventStream<StageEvent> {
  const events = new EventStream<StageEvent>();
  events.on((event) => {
    if (event.type !== 'step') return;
    seen.push(event.step);
    if (event.step === step) throw new Error(`stopped at ${step}`);
  });
  return events;
}
