// Loaded into `churn` processes by the operations tests (`node --import`, see startChurn in support.ts), never by
// the product: it subscribes to the event stream of every run in the process (the diagnostics channel of
// pipelines/base/events.ts) and stops the process at a named point, so that a test knows where a kill lands.
//
// A point is a stage's name, reached when the stage starts (recover, land, transform, quality, export, report,
// publish, catalog), or a step's name (publish-version, publish-commit, publish-swap, publish-current; an S3
// output's local copy: mirror-publish-version...; a shard: shard-commit).
//
//   CHURN_TEST_KILL_AT=<point>        writes <markers>/killed-<point>, then ends the process with SIGKILL there
//   CHURN_TEST_PAUSE_AT=<point>,...   writes <markers>/paused-<point> and waits there until the file is removed,
//                                     or CHURN_TEST_PAUSE_MS milliseconds have passed (a slow run)
//   CHURN_TEST_MARKERS=<folder>       where the marker files go

import { channel } from 'node:diagnostics_channel';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const env = process.env;
const markers = env.CHURN_TEST_MARKERS;
const killAt = env.CHURN_TEST_KILL_AT;
const pauseAt = new Set((env.CHURN_TEST_PAUSE_AT ?? '').split(',').filter(Boolean));
const pauseMs =
  env.CHURN_TEST_PAUSE_MS === undefined ? Number.POSITIVE_INFINITY : Number(env.CHURN_TEST_PAUSE_MS);

/** The point an event reaches, if any. */
function pointOf(event) {
  if (event.type === 'started') return event.stage;
  if (event.type === 'step') return event.step;
  return undefined;
}

function mark(name) {
  mkdirSync(markers, { recursive: true });
  const file = join(markers, name);
  writeFileSync(file, `${process.pid}\n`);
  return file;
}

async function onEvent(event) {
  const point = pointOf(event);
  if (point === undefined) return;
  if (point === killAt) {
    mark(`killed-${point}`);
    process.kill(process.pid, 'SIGKILL');
  }
  if (pauseAt.has(point)) {
    const file = mark(`paused-${point}`);
    const until = Date.now() + pauseMs;
    while (existsSync(file) && Date.now() < until) await sleep(25);
    rmSync(file, { force: true });
  }
}

// Held by this module, so that the channel (and its subscription) lives as long as the process.
const streams = channel('churn-pipeline:events');
if (markers && (killAt || pauseAt.size > 0)) {
  streams.subscribe((stream) => {
    stream.on(onEvent);
  });
}
