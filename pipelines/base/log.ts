// Logs and progress, on stderr. Never log personal data or secrets.
//
// Two formats. `json` (the default off a terminal, in CI and with --log-format json): one JSON line per event,
// every field kept, for log collectors. `human` (the default on a terminal): a short log a person reads, one line
// per stage with its time and counts, warnings and errors, and a progress bar (cli-progress) while a long stage
// runs; the per-model details of a run are left out (they are in the JSON lines, and `--log-level debug` shows
// them here too).
import { styleText } from 'node:util';
import cliProgress from 'cli-progress';
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const LOG_FORMATS = ['human', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What the human log writes to: process.stderr, or a test's stand-in. */
export interface Terminal {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface LoggerOptions {
  level?: string;
  /** Default: CHURN_LOG_FORMAT, else `human` when stderr is a terminal and CI is not set, else `json`. */
  format?: LogFormat;
  secrets?: readonly string[];
  /** Where the human log goes (default process.stderr; JSON lines always go to file descriptor 2). */
  terminal?: Terminal;
}

/** Progress of a long stage: items done of the total (sources landed, models built, nights replayed). */
export interface StageProgress {
  stage: string;
  done: number;
  total: number;
  /** What is counted: sources, models, nights. */
  unit: string;
  /** The item just finished. */
  item?: string;
}
export type ProgressListener = (progress: StageProgress) => void;

export function defaultLogFormat(
  stream: Terminal = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): LogFormat {
  const fromEnv = env.CHURN_LOG_FORMAT;
  if (fromEnv === 'human' || fromEnv === 'json') return fromEnv;
  return stream.isTTY === true && env.CI === undefined ? 'human' : 'json';
}

interface LogRecord {
  level: number;
  msg?: string;
  [key: string]: unknown;
}

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
/** Fields that a human line never shows: pino's own and the ones too long for one line. */
const HIDDEN_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

function formatNumber(value: number): string {
  return Number.isInteger(value) ? value.toLocaleString('en-US') : String(Number(value.toPrecision(4)));
}

function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

function isNumberRecord(value: unknown): value is Record<string, number> {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'number')
  );
}

/** A stage's counts: `36 models`, `229,565 rows from 8 entities`, `checks: passed 49, warned 0, failed 0`. */
function stageDetails(record: LogRecord): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (HIDDEN_FIELDS.has(key) || key === 'stage' || key === 'ms') continue;
    if (typeof value === 'number') parts.push(`${formatNumber(value)} ${key}`);
    else if (key === 'rows' && isNumberRecord(value)) {
      const n = Object.keys(value).length;
      const total = Object.values(value).reduce((a, b) => a + b, 0);
      parts.push(`${formatNumber(total)} rows from ${n} ${n === 1 ? 'entity' : 'entities'}`);
    } else if (isNumberRecord(value)) {
      parts.push(
        `${key}: ${Object.entries(value)
          .map(([k, v]) => `${k} ${formatNumber(v)}`)
          .join(', ')}`,
      );
    } else if (typeof value === 'string' || typeof value === 'boolean') parts.push(`${key} ${value}`);
  }
  return parts.join(', ');
}

/** The scalar fields of a record as `key=value`, for warnings and details. */
function scalarFields(record: LogRecord, skip: readonly string[] = []): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (HIDDEN_FIELDS.has(key) || skip.includes(key)) continue;
    if (typeof value === 'number') parts.push(`${key}=${formatNumber(value)}`);
    else if (typeof value === 'string' || typeof value === 'boolean')
      parts.push(`${key}=${String(value).length > 80 ? `${String(value).slice(0, 77)}...` : value}`);
  }
  return parts.join(' ');
}

type Style = Parameters<typeof styleText>[0];

/**
 * The human log: a pino destination that turns each JSON line into at most one short line, and draws the
 * progress bar of the stage that is running. Lines printed while a bar is drawn go above it.
 */
class HumanLog implements DestinationStream {
  private inRun = false;
  private bars: cliProgress.MultiBar | null = null;
  private bar: cliProgress.SingleBar | null = null;
  private barStage: string | null = null;
  private readonly color: boolean;

  constructor(
    private readonly terminal: Terminal,
    private readonly verbose: boolean,
  ) {
    this.color = terminal.isTTY === true && process.env.NO_COLOR === undefined;
  }

  private style(format: Style, text: string): string {
    return this.color ? styleText(format, text) : text;
  }

  write(line: string): void {
    let record: LogRecord;
    try {
      record = JSON.parse(line) as LogRecord;
    } catch {
      this.print(line.trimEnd());
      return;
    }
    const text = this.format(record);
    if (text !== null) this.print(text);
  }

  private format(record: LogRecord): string | null {
    const msg = record.msg ?? '';
    const level = record.level;
    if (typeof record.stage === 'string' && typeof record.ms === 'number') {
      this.stopBar(record.stage);
      const details = stageDetails(record);
      return `  ${this.style('green', '✓')} ${record.stage.padEnd(10)} ${formatMs(record.ms).padStart(9)}${details ? `   ${this.style('dim', details)}` : ''}`;
    }
    if (msg === 'run started') {
      this.inRun = true;
      return `${this.style('bold', 'churn')} run ${String(record.runId)} as of ${String(record.asOf)}`;
    }
    if (level >= 50) {
      this.inRun = false;
      const fields = scalarFields(record);
      return `  ${this.style('red', '✗')} ${msg}${fields ? this.style('dim', `  (${fields})`) : ''}`;
    }
    if (level >= 40) {
      const fields = scalarFields(record);
      return `  ${this.style('yellow', '!')} ${msg}${fields ? this.style('dim', `  (${fields})`) : ''}`;
    }
    if (msg === 'run succeeded') {
      this.inRun = false;
      return `  ${this.style('green', '✓')} ${this.style('bold', 'run succeeded')}`;
    }
    if (this.verbose) {
      const fields = scalarFields(record);
      return this.style('dim', `    ${LEVELS[level] ?? level} ${msg}${fields ? `  (${fields})` : ''}`);
    }
    // Inside a run, what is not a stage line is detail (per model, per file); outside one (scheduler,
    // backfill, sample data) each event is one line.
    if (this.inRun) return null;
    const fields = scalarFields(record, ['runId']);
    return `  ${msg}${fields ? this.style('dim', `  (${fields})`) : ''}`;
  }

  private print(text: string): void {
    if (this.bars) this.bars.log(`${text}\n`);
    else this.terminal.write(`${text}\n`);
  }

  /** Starts, moves or ends the bar of a stage (drawn on a terminal only). */
  progress(p: StageProgress): void {
    if (this.terminal.isTTY !== true) return;
    if (this.barStage !== p.stage) {
      this.stopBar();
      if (p.done >= p.total) return;
      this.bars = new cliProgress.MultiBar({
        stream: this.terminal as NodeJS.WritableStream,
        format: `  ${this.style('cyan', '{stage}')} {bar} {value}/{total} {unit} | {duration_formatted} | {item}`,
        barsize: 24,
        barCompleteChar: '█',
        barIncompleteChar: '░',
        hideCursor: false,
        clearOnComplete: true,
        stopOnComplete: false,
        autopadding: true,
        fps: 5,
      });
      this.bar = this.bars.create(p.total, p.done, { stage: p.stage.padEnd(10), unit: p.unit, item: '' });
      this.barStage = p.stage;
    }
    this.bar?.setTotal(p.total);
    this.bar?.update(p.done, { item: p.item ?? '' });
    if (p.done >= p.total) this.stopBar();
  }

  /** Clears the bar (of that stage, or any), printing the lines logged while it was drawn. */
  stopBar(stage?: string): void {
    if (!this.bars || (stage !== undefined && stage !== this.barStage)) return;
    const bars = this.bars;
    this.bars = null;
    this.bar = null;
    this.barStage = null;
    bars.update();
    bars.stop();
  }
}

/** Human logs with a bar that may be drawn: stopped before the process prints its last words. */
const humanLogs = new Set<HumanLog>();
const progressOf = new WeakMap<Logger, HumanLog>();
/** The logger process warnings go to (the most recent one created). */
let warningLogger: Logger | undefined;

export function createLogger(options: LoggerOptions = {}): Logger {
  const terminal = options.terminal ?? process.stderr;
  const format = options.format ?? defaultLogFormat(terminal);
  const level = options.level ?? process.env.CHURN_LOG_LEVEL ?? 'info';
  const secrets = (options.secrets ?? []).filter((s) => s.length >= 4);
  const redactSecrets = (text: string): string => secrets.reduce((t, s) => t.split(s).join('***'), text);
  const human = format === 'human' ? new HumanLog(terminal, ['debug', 'trace'].includes(level)) : null;
  const log = pino(
    {
      level,
      base: undefined,
      redact: {
        paths: ['email', '*.email', 'connection', '*.connection', 'password', '*.password'],
        censor: '***',
      },
      hooks: {
        streamWrite: secrets.length ? redactSecrets : undefined,
      },
    },
    human ?? pino.destination({ dest: 2, sync: true }),
  );
  if (human) {
    humanLogs.add(human);
    progressOf.set(log, human);
  }
  warningLogger = log;
  return log;
}

/** The progress listener of a logger: draws bars for a human log on a terminal, undefined otherwise. */
export function progressListener(log: Logger): ProgressListener | undefined {
  const human = progressOf.get(log);
  return human ? (p) => human.progress(p) : undefined;
}

/** Clears every progress bar (before an error line or the summary is printed). */
export function stopProgress(): void {
  for (const human of humanLogs) human.stopBar();
}

/**
 * Process warnings (e.g. the AWS SDK's Node-version notice) go to the log like every other event: a JSON line,
 * or one line of the human log.
 */
export function routeProcessWarnings(): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    const message = `${warning.name}: ${warning.message}`;
    if (warningLogger) warningLogger.warn(message);
    else process.stderr.write(`${JSON.stringify({ level: 40, time: Date.now(), msg: message })}\n`);
  });
}

/** A logger that writes nothing (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
