// Config validation: every bad key is named with the value found and what is expected.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../config/load.js';

const parse = (text: string, env: NodeJS.ProcessEnv = {}) => parseConfig(text, 'test.yaml', env);
const problem = (text: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parse(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the config to be rejected');
};

describe('config', () => {
  it('fills every default from an empty file', () => {
    const { config } = parse('');
    expect(config.period_grain).toBe('month');
    expect(config.business_time_zone).toBe('UTC');
    expect(config.quality.max_quarantine_share).toBe(0.01);
    expect(config.health.recent_days).toBe(90);
    expect(config.audience.suppression_days).toBe(30);
    expect(config.output).toEqual({ type: 'local', path: 'out' });
  });

  it('names the key, the value found and what is expected', () => {
    const message = problem('period_grain: fortnight\nhealth:\n  recent_days: -3\n');
    expect(message).toContain('config key "period_grain": found "fortnight"');
    expect(message).toContain('"day"');
    expect(message).toContain('config key "health.recent_days": found -3');
  });

  it('rejects unknown keys and says where they are', () => {
    expect(problem('sources:\n  orders:\n    type: local\n    path: x.csv\n    delimter: ";"\n')).toMatch(
      /unknown key\(s\) "delimter" under "sources.orders"/,
    );
    expect(problem('sourcez: {}\n')).toMatch(/unknown key\(s\) "sourcez" at the top level/);
  });

  it('rejects an unknown entity and a bad time zone', () => {
    expect(problem('sources:\n  payments: {type: local, path: p.csv}\n')).toContain('sources');
    expect(problem('business_time_zone: Mars/Olympus\n')).toContain('IANA time zone');
  });

  it('interpolates ${VAR} from the environment and never shows the secret in errors', () => {
    const text =
      'sources:\n  orders:\n    type: warehouse\n    dialect: postgres\n    connection: ${PG_URL}\n    table: orders\n';
    const { config, secrets } = parse(text, { PG_URL: 'postgres://u:hunter2@db/x' });
    expect(config.sources.orders).toMatchObject({ connection: 'postgres://u:hunter2@db/x' });
    expect(secrets).toEqual(['postgres://u:hunter2@db/x']);
    const bad = problem('output:\n  type: s3\n  bucket: ${SECRET}\n  endpoint: ${SECRET}\n', {
      SECRET: 'not a url hunter2',
    });
    expect(bad).not.toContain('hunter2');
    expect(bad).toContain('***');
  });

  it('fails clearly when a variable is not set', () => {
    expect(problem('output:\n  type: s3\n  bucket: ${BUCKET}\n')).toMatch(
      /config key "output.bucket" uses \$\{BUCKET\}, but the environment variable BUCKET is not set/,
    );
  });

  it('reports invalid YAML and a missing file', () => {
    expect(problem('sources: [unclosed\n')).toMatch(/not valid YAML/);
    expect(() => loadConfig('/nonexistent/churn.yaml')).toThrow(/cannot read config file .*--config/);
  });

  it('says every problem on one line', () => {
    const many = problem('period_grain: fortnight\nhealth:\n  recent_days: -3\nsourcez: {}\n');
    expect(many).not.toContain('\n');
    expect(many).toMatch(
      /^test\.yaml has 3 problem\(s\): config key "period_grain": found "fortnight", .*; config key "health\.recent_days": found -3, .*; unknown key\(s\) "sourcez" at the top level/,
    );
    const yaml = problem('sources: [unclosed\n');
    expect(yaml).not.toContain('\n');
    expect(yaml).toMatch(
      /^test\.yaml is not valid YAML: .* at line \d+, column \d+; fix the file, then run again$/,
    );
    expect(problem('a: 1\n  b: 2\n')).not.toContain('\n');
  });

  it('loads the embedded default', () => {
    const loaded = loadConfig();
    expect(Object.keys(loaded.config.sources).sort()).toEqual([
      'activity',
      'customers',
      'email_events',
      'invoices',
      'orders',
      'subscriptions',
      'surveys',
      'tickets',
    ]);
  });
});
