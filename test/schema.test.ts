// `churn schema`: the JSON schema of churn.yaml that editors check the config with. A JSON Schema validator
// (Ajv, draft 2020-12) accepts every config the project ships and what `churn init` writes, and rejects what
// the zod schema rejects: unknown keys, wrong values, a source of an unknown type.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { ENTITIES } from '../config/schema.js';
import { buildProgram } from '../pipelines/cli.js';
import { configJsonSchema, initConfig } from '../pipelines/init.js';

const ROOT = join(import.meta.dirname, '..');

function validator() {
  // Formats (date, uri) are hints for editors here; zod checks them at start-up.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  return ajv.compile(configJsonSchema());
}

function yamlFile(path: string): unknown {
  return parse(readFileSync(path, 'utf8'));
}

describe('the JSON schema of churn.yaml', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('is valid draft 2020-12 and accepts the embedded default and every example config', () => {
    const validate = validator();
    const files = [
      join(ROOT, 'config', 'default.yaml'),
      ...readdirSync(join(ROOT, 'examples'))
        .filter((f) => f.endsWith('.yaml') && f !== 'docker-compose.yaml')
        .map((f) => join(ROOT, 'examples', f)),
    ];
    expect(files.length).toBeGreaterThan(2);
    for (const file of files) {
      expect(validate(yamlFile(file)), `${file}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it('accepts what churn init writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'churn-schema-'));
    writeFileSync(
      join(dir, 'orders.csv'),
      'InvoiceNo,CustomerID,InvoiceDate,Quantity,UnitPrice\n1,c1,2025-01-02,2,3.5\n',
    );
    writeFileSync(join(dir, 'customers.csv'), 'id,Country\nc1,DE\n');
    const { text } = await initConfig({ folder: dir, configFile: join(dir, 'churn.yaml') });
    const validate = validator();
    expect(validate(parse(text)), JSON.stringify(validate.errors)).toBe(true);
  });

  it('rejects unknown keys, wrong values and unknown source types', () => {
    const validate = validator();
    expect(validate({ period_grain: 'fortnight' })).toBe(false);
    expect(validate({ bussiness_time_zone: 'UTC' })).toBe(false);
    expect(validate({ sources: { orders: { type: 'ftp', path: 'x' } } })).toBe(false);
    expect(validate({ sources: { order: { type: 'local', path: 'x' } } })).toBe(false);
    expect(validate({ sources: { orders: { type: 'local', path: 'x', colums: {} } } })).toBe(false);
    expect(validate({ health: { horizon_days: 3 } })).toBe(false);
    expect(
      validate({
        sources: { orders: { type: 'local', path: 'o.csv', columns: { amount: { expr: 'a*b' } } } },
      }),
    ).toBe(true);
  });

  it('names every entity under sources, so editors complete them', () => {
    const schema = configJsonSchema() as {
      properties: { sources: { properties: Record<string, unknown>; additionalProperties: unknown } };
      $defs: Record<string, unknown>;
    };
    expect(Object.keys(schema.properties.sources.properties)).toEqual([...ENTITIES]);
    expect(schema.properties.sources.additionalProperties).toBe(false);
    expect(schema.properties.sources.properties.orders).toEqual({ $ref: '#/$defs/source' });
    expect(JSON.stringify(schema.$defs.source)).toContain('"warehouse"');
  });

  it('is what `churn schema` prints', async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    await buildProgram().parseAsync(['node', 'churn', 'schema']);
    expect(JSON.parse(out.join(''))).toEqual(configJsonSchema());
  });
});
