// Run notifications: a Slack-compatible webhook (`{"text": ...}`) on failure, and on success when
// notifications.on_success is set. A failing webhook is logged and never fails the run.
// The URL is a secret (it usually comes from ${ENV}): it is never logged.
import type { Config } from '../../config/schema.js';
import type { Listener } from '../base/events.js';
import type { Logger } from '../base/log.js';
import type { RunChecked, RunEvent, RunStarted } from '../run/events.js';
import type { Trigger } from './state.js';

export const WEBHOOK_TIMEOUT_MS = 5_000;

export interface RunNotice {
  runId: string;
  asOf: string;
  trigger: Trigger;
  status: 'success' | 'failed';
  output: string;
  /** The one-line reason of a failure. */
  reason?: string;
  /** Gates that warned (published, flagged). */
  warnings?: string[];
  counts: Record<string, number | string | null>;
}

export function noticeText(notice: RunNotice): string {
  const head =
    notice.status === 'success'
      ? `churn-pipeline: run ${notice.runId} as of ${notice.asOf} succeeded`
      : `churn-pipeline: run ${notice.runId} as of ${notice.asOf} FAILED`;
  const lines = [`${head} (${notice.trigger}, output ${notice.output})`];
  if (notice.reason) lines.push(`Reason: ${notice.reason}`);
  if (notice.warnings?.length) lines.push(`Warnings: ${notice.warnings.join('; ')}`);
  const counts = Object.entries(notice.counts).filter(([, v]) => v !== null && v !== undefined);
  if (counts.length) lines.push(`Counts: ${counts.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return lines.join('\n');
}

/** Posts the notice when the config asks for it; resolves whether or not the webhook answered. */
export async function notify(
  settings: Config['notifications'],
  notice: RunNotice,
  log: Logger,
  timeoutMs: number = WEBHOOK_TIMEOUT_MS,
): Promise<boolean> {
  const url = settings.webhook_url;
  if (!url || (notice.status === 'success' && !settings.on_success)) return false;
  const started = performance.now();
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: noticeText(notice) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) {
      log.warn(
        { httpStatus: response.status, runId: notice.runId },
        'the notification webhook refused the message',
      );
      return false;
    }
    log.info({ runId: notice.runId, ms: Math.round(performance.now() - started) }, 'notification sent');
    return true;
  } catch (err) {
    const e = err as Error;
    const why =
      e.name === 'TimeoutError'
        ? `no answer within ${timeoutMs / 1000} s`
        : ((e.cause as Error)?.message ?? e.message);
    log.warn(
      { runId: notice.runId, reason: why.split(url).join('<notifications.webhook_url>') },
      'the notification webhook could not be reached',
    );
    return false;
  }
}

/**
 * The webhook's subscriber to a run's events: the notice of its end (failed, or succeeded with the warnings of its
 * gates and its summary), with the rows landed per entity and the quarantined rows.
 */
export function notifyWebhook(
  settings: Config['notifications'],
  output: string,
  log: Logger,
): Listener<RunEvent> {
  let started: RunStarted | undefined;
  const landed: Record<string, number> = {};
  let checked: RunChecked | undefined;
  const counts = () => ({
    ...Object.fromEntries(Object.entries(landed).map(([entity, rows]) => [`${entity}_rows`, rows])),
    quarantined_rows: checked?.quarantinedRows ?? 0,
  });
  return async (event) => {
    switch (event.type) {
      case 'run-started':
        started = event;
        return;
      case 'progress':
        if (event.stage === 'land' && event.item !== undefined && event.rows !== undefined) {
          landed[event.item] = event.rows;
        }
        return;
      case 'checked':
        checked = event;
        return;
    }
    if (!started) return;
    const notice = { runId: started.runId, asOf: started.asOf, trigger: started.trigger, output };
    if (event.type === 'run-succeeded') {
      await notify(
        settings,
        {
          ...notice,
          status: 'success',
          warnings: checked?.messages,
          counts: { ...event.summary, ...counts() },
        },
        log,
      );
    } else if (event.type === 'run-failed') {
      await notify(settings, { ...notice, status: 'failed', reason: event.error, counts: counts() }, log);
    }
  };
}
