// Structured logs: JSON lines, pretty on a terminal. Never log personal data or secrets.
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(
  options: { level?: string; pretty?: boolean; secrets?: readonly string[] } = {},
): Logger {
  const pretty = options.pretty ?? (process.stderr.isTTY === true && process.env.CI === undefined);
  const secrets = (options.secrets ?? []).filter((s) => s.length >= 4);
  const redactSecrets = (text: string): string => secrets.reduce((t, s) => t.split(s).join('***'), text);
  return pino(
    {
      level: options.level ?? process.env.CHURN_LOG_LEVEL ?? 'info',
      base: undefined,
      redact: {
        paths: ['email', '*.email', 'connection', '*.connection', 'password', '*.password'],
        censor: '***',
      },
      hooks: {
        streamWrite: secrets.length ? redactSecrets : undefined,
      },
    },
    pretty
      ? pino.transport({ target: 'pino-pretty', options: { destination: 2, translateTime: 'SYS:HH:MM:ss' } })
      : pino.destination({ dest: 2, sync: true }),
  );
}

/** A logger that writes nothing (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
