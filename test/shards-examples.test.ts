// The shard examples (examples/shards/) against the schemas of the engines that run them, where no kubectl or AWS
// account is at hand: the Kubernetes Indexed Job and merge Job (batch/v1 Job fields), the AWS Batch job definition
// and its submissions (RegisterJobDefinition, SubmitJob). Beyond the fields: the arguments are commands and options
// churn has, every index of the array resolves to its shard, the merge waits for the same count and date, the
// memory a pod gets covers DuckDB's limit, and the configs are valid churn configs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { configSchema } from '../config/schema.js';
import { buildProgram } from '../pipelines/cli.js';
import { configJsonSchema } from '../pipelines/init.js';
import { resolveShard } from '../pipelines/shard/spec.js';

const DIR = join(import.meta.dirname, '..', 'examples', 'shards');
const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
// The config's own JSON schema, as editors read it (test/schema.test.ts): its unions are not strict-mode types.
const configAjv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });

type Json = Record<string, unknown>;

/** A closed object schema: `properties` and nothing else (a misspelt field fails), with `keywords` beside them. */
const closed = (keywords: Json, properties: Json): Json => ({
  type: 'object',
  additionalProperties: false,
  ...keywords,
  properties,
});
const name = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 };
const quantity = { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$' };
const strings = { type: 'object', additionalProperties: { type: 'string' } };
const resources = closed(
  {},
  {
    requests: {
      type: 'object',
      additionalProperties: quantity,
      propertyNames: { enum: ['cpu', 'memory', 'ephemeral-storage'] },
    },
    limits: {
      type: 'object',
      additionalProperties: quantity,
      propertyNames: { enum: ['cpu', 'memory', 'ephemeral-storage'] },
    },
  },
);
const container = closed(
  { required: ['name', 'image', 'args'] },
  {
    name,
    image: { type: 'string', pattern: '^[a-z0-9./_:-]+$' },
    args: { type: 'array', items: { type: 'string' }, minItems: 1 },
    env: {
      type: 'array',
      items: closed(
        { required: ['name', 'value'] },
        { name: { type: 'string', pattern: '^[A-Z_][A-Z0-9_]*$' }, value: { type: 'string' } },
      ),
    },
    resources,
    volumeMounts: {
      type: 'array',
      items: closed(
        { required: ['name', 'mountPath'] },
        { name, mountPath: { type: 'string', pattern: '^/' }, readOnly: { type: 'boolean' } },
      ),
    },
  },
);
const volume = closed(
  { required: ['name'], minProperties: 2, maxProperties: 2 },
  {
    name,
    configMap: closed({ required: ['name'] }, { name }),
    emptyDir: closed({}, { sizeLimit: quantity, medium: { enum: ['', 'Memory'] } }),
    persistentVolumeClaim: closed(
      { required: ['claimName'] },
      { claimName: name, readOnly: { type: 'boolean' } },
    ),
  },
);
const metadata = closed({ required: ['name'] }, { name, labels: strings, annotations: strings });
/** A Kubernetes object: its apiVersion and kind, the metadata and the body (spec, or a ConfigMap's data), closed. */
const kubernetesObject = (apiVersion: string, kind: string, body: Json) =>
  closed(
    { required: ['apiVersion', 'kind', 'metadata', ...Object.keys(body)] },
    { apiVersion: { const: apiVersion }, kind: { const: kind }, metadata, ...body },
  );
/** batch/v1 Job, the fields the examples use (a misspelt field fails: every object is closed). */
const jobSchema = kubernetesObject('batch/v1', 'Job', {
  spec: closed(
    { required: ['template'] },
    {
      completionMode: { enum: ['NonIndexed', 'Indexed'] },
      completions: { type: 'integer', minimum: 1 },
      parallelism: { type: 'integer', minimum: 1 },
      backoffLimit: { type: 'integer', minimum: 0 },
      backoffLimitPerIndex: { type: 'integer', minimum: 0 },
      activeDeadlineSeconds: { type: 'integer', minimum: 1 },
      ttlSecondsAfterFinished: { type: 'integer', minimum: 0 },
      template: closed(
        { required: ['spec'] },
        {
          metadata: closed({}, { labels: strings, annotations: strings }),
          spec: closed(
            { required: ['containers', 'restartPolicy'] },
            {
              restartPolicy: { enum: ['Never', 'OnFailure'] },
              serviceAccountName: name,
              securityContext: closed(
                {},
                {
                  runAsUser: { type: 'integer' },
                  runAsGroup: { type: 'integer' },
                  fsGroup: { type: 'integer' },
                  runAsNonRoot: { type: 'boolean' },
                },
              ),
              containers: { type: 'array', items: container, minItems: 1 },
              volumes: { type: 'array', items: volume },
            },
          ),
        },
      ),
    },
  ),
});
const configMapSchema = kubernetesObject('v1', 'ConfigMap', { data: strings });
const pvcSchema = kubernetesObject('v1', 'PersistentVolumeClaim', {
  spec: closed(
    { required: ['accessModes', 'resources'] },
    {
      accessModes: {
        type: 'array',
        items: { enum: ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'] },
      },
      storageClassName: { type: 'string' },
      resources: closed(
        { required: ['requests'] },
        {
          requests: { type: 'object', required: ['storage'], properties: { storage: quantity } },
        },
      ),
    },
  ),
});

const resourceRequirement = closed(
  { required: ['type', 'value'] },
  {
    type: { enum: ['GPU', 'VCPU', 'MEMORY'] },
    value: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?$' },
  },
);
const command = { type: 'array', items: { type: 'string' }, minItems: 1 };
/** AWS Batch RegisterJobDefinition, the fields the example uses. */
const jobDefinitionSchema = closed(
  { required: ['jobDefinitionName', 'type', 'containerProperties'] },
  {
    jobDefinitionName: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$' },
    type: { enum: ['container', 'multinode'] },
    platformCapabilities: { type: 'array', items: { enum: ['EC2', 'FARGATE'] } },
    parameters: strings,
    containerProperties: closed(
      { required: ['image', 'command', 'resourceRequirements'] },
      {
        image: { type: 'string', minLength: 1 },
        command,
        jobRoleArn: { type: 'string', pattern: '^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+' },
        executionRoleArn: { type: 'string', pattern: '^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+' },
        resourceRequirements: { type: 'array', items: resourceRequirement, minItems: 2 },
        environment: {
          type: 'array',
          items: closed(
            { required: ['name', 'value'] },
            {
              name: { type: 'string', not: { pattern: '^AWS_BATCH' } },
              value: { type: 'string' },
            },
          ),
        },
        volumes: {
          type: 'array',
          items: closed(
            { required: ['name', 'efsVolumeConfiguration'] },
            {
              name: { type: 'string' },
              efsVolumeConfiguration: closed(
                { required: ['fileSystemId'] },
                {
                  fileSystemId: { type: 'string', pattern: '^fs-[0-9a-f]+$' },
                  rootDirectory: { type: 'string', pattern: '^/' },
                  transitEncryption: { enum: ['ENABLED', 'DISABLED'] },
                },
              ),
            },
          ),
        },
        mountPoints: {
          type: 'array',
          items: closed(
            { required: ['sourceVolume', 'containerPath'] },
            {
              sourceVolume: { type: 'string' },
              containerPath: { type: 'string', pattern: '^/' },
              readOnly: { type: 'boolean' },
            },
          ),
        },
      },
    ),
    retryStrategy: closed(
      {},
      {
        attempts: { type: 'integer', minimum: 1, maximum: 10 },
        evaluateOnExit: {
          type: 'array',
          maxItems: 5,
          items: closed(
            { required: ['action'], minProperties: 2 },
            {
              action: { enum: ['RETRY', 'EXIT', 'retry', 'exit'] },
              onStatusReason: { type: 'string', maxLength: 512 },
              onReason: { type: 'string', maxLength: 512 },
              onExitCode: { type: 'string', pattern: '^[0-9]+\\*?$' },
            },
          ),
        },
      },
    ),
    timeout: closed({}, { attemptDurationSeconds: { type: 'integer', minimum: 60 } }),
    propagateTags: { type: 'boolean' },
    tags: strings,
  },
);
/** AWS Batch SubmitJob, the fields the examples use. */
const submitSchema = closed(
  { required: ['jobName', 'jobQueue', 'jobDefinition'] },
  {
    jobName: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$' },
    jobQueue: { type: 'string', minLength: 1 },
    jobDefinition: { type: 'string', minLength: 1 },
    arrayProperties: closed(
      { required: ['size'] },
      { size: { type: 'integer', minimum: 2, maximum: 10000 } },
    ),
    dependsOn: {
      type: 'array',
      maxItems: 20,
      items: closed(
        { required: ['jobId'] },
        { jobId: { type: 'string', minLength: 1 }, type: { enum: ['N_TO_N', 'SEQUENTIAL'] } },
      ),
    },
    parameters: strings,
    containerOverrides: closed(
      {},
      { command, resourceRequirements: { type: 'array', items: resourceRequirement } },
    ),
  },
);

function valid(schema: object, value: unknown, what: string): void {
  const validate = ajv.compile(schema);
  expect(validate(value), `${what}: ${JSON.stringify(validate.errors)}`).toBe(true);
}

/** Checks a churn command line against the CLI: the subcommand exists and knows every option. */
function checkCommandLine(args: readonly string[]): { command: string; options: Record<string, string> } {
  const program = buildProgram();
  const [name, ...rest] = args;
  const sub = program.commands.find((c: Command) => c.name() === name);
  expect(sub, `churn ${name}`).toBeDefined();
  const known = new Set([...(sub?.options ?? []), ...program.options].map((o) => o.long));
  const options: Record<string, string> = {};
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i] ?? '';
    expect(known.has(flag), `churn ${name} ${flag}`).toBe(true);
    const next = rest[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      options[flag] = next;
      i++;
    } else options[flag] = 'true';
  }
  return { command: name ?? '', options };
}

/** Bytes in a Kubernetes quantity (16Gi), a Batch MEMORY value (MiB) or DuckDB's memory_limit (12GB). */
function bytes(value: string, unit: 'quantity' | 'mib' | 'duckdb'): number {
  if (unit === 'mib') return Number(value) * 2 ** 20;
  const match = /^([0-9.]+)\s*([A-Za-z]*)$/.exec(value);
  const factors: Record<string, number> = {
    '': 1,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    KB: 1e3,
    MB: 1e6,
    GB: 1e9,
    TB: 1e12,
    KiB: 2 ** 10,
    MiB: 2 ** 20,
    GiB: 2 ** 30,
  };
  const factor = factors[match?.[2] ?? ''];
  if (!match || factor === undefined) throw new Error(`not a size: ${value}`);
  return Number(match[1]) * factor;
}

function churnConfig(text: string, what: string) {
  const raw = parse(text) as unknown;
  const validate = configAjv.compile(configJsonSchema());
  expect(validate(raw), `${what}: ${JSON.stringify(validate.errors)}`).toBe(true);
  const config = configSchema.parse(raw);
  // Shards on separate machines write where the merge reads: an S3 output (or a local one on a shared volume).
  expect(config.output.type, what).toBe('s3');
  return config;
}

describe('the Kubernetes example (Indexed Job + merge Job)', () => {
  const docs = parseAllDocuments(readFileSync(join(DIR, 'k8s-indexed-job.yaml'), 'utf8')).map(
    (d) => d.toJS() as Json,
  );
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  type Job = {
    metadata: { name: string };
    spec: {
      completionMode?: string;
      completions?: number;
      parallelism?: number;
      template: {
        spec: {
          containers: {
            image: string;
            args: string[];
            env?: { name: string; value: string }[];
            resources?: { limits?: { memory?: string } };
            volumeMounts?: { name: string; mountPath: string }[];
          }[];
          volumes?: {
            name: string;
            configMap?: { name: string };
            persistentVolumeClaim?: { claimName: string };
          }[];
        };
      };
    };
  };
  const jobs = byKind('Job') as unknown as Job[];
  const shardJob = jobs.find((j) => j.spec.completionMode === 'Indexed');
  const mergeJob = jobs.find((j) => j.spec.completionMode !== 'Indexed');

  it('is a ConfigMap, an Indexed Job, a merge Job and a claim, each valid', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Job', 'Job', 'PersistentVolumeClaim']);
    for (const job of jobs) valid(jobSchema, job, `Job ${job.metadata.name}`);
    valid(configMapSchema, byKind('ConfigMap')[0], 'ConfigMap');
    valid(pvcSchema, byKind('PersistentVolumeClaim')[0], 'PersistentVolumeClaim');
    expect(shardJob && mergeJob).toBeTruthy();
  });

  /** The container's arguments with $(VAR) expanded from its env, as the kubelet does. */
  function argsOf(job: Job): string[] {
    const c = job.spec.template.spec.containers[0];
    const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
    return (c?.args ?? []).map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_, v: string) => env[v] ?? `$(${v})`));
  }

  it('runs every index as its shard and merges the same count and date', () => {
    const shards = shardJob as Job;
    const merge = mergeJob as Job;
    const completions = shards.spec.completions ?? 0;
    expect(completions).toBeGreaterThan(1);
    expect(shards.spec.parallelism).toBeLessThanOrEqual(completions);
    const run = checkCommandLine(argsOf(shards));
    expect(run.command).toBe('run');
    for (let index = 0; index < completions; index++) {
      const spec = resolveShard({ shards: run.options['--shards'] }, { JOB_COMPLETION_INDEX: String(index) });
      expect(spec).toEqual({ index, count: completions });
    }
    const merged = checkCommandLine(argsOf(merge));
    expect(merged.command).toBe('merge');
    expect(Number(merged.options['--shards'])).toBe(completions);
    expect(merged.options['--as-of']).toBe(run.options['--as-of']);
    expect(merged.options['--as-of']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(merge.spec.template.spec.containers[0]?.image).toBe(
      shards.spec.template.spec.containers[0]?.image,
    );
  });

  it('mounts the config the arguments name, a valid churn config, with memory above DuckDB limit', () => {
    const configMap = byKind('ConfigMap')[0] as { metadata: { name: string }; data: Record<string, string> };
    const claims = byKind('PersistentVolumeClaim').map(
      (p) => (p as { metadata: { name: string } }).metadata.name,
    );
    for (const job of jobs) {
      const pod = job.spec.template.spec;
      const c = pod.containers[0];
      const { options } = checkCommandLine(argsOf(job));
      const file = options['--config'] ?? '';
      const mount = c?.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
      const volume = pod.volumes?.find((v) => v.name === mount?.name);
      expect(volume?.configMap?.name, `${job.metadata.name}: the volume of ${file}`).toBe(
        configMap.metadata.name,
      );
      const text = configMap.data[file.slice((mount?.mountPath.length ?? 0) + 1)];
      expect(text, file).toBeDefined();
      const config = churnConfig(text ?? '', `${job.metadata.name}: ${file}`);
      for (const v of pod.volumes ?? []) {
        if (v.persistentVolumeClaim) expect(claims).toContain(v.persistentVolumeClaim.claimName);
      }
      for (const m of c?.volumeMounts ?? []) expect(pod.volumes?.map((v) => v.name)).toContain(m.name);
      expect(bytes(c?.resources?.limits?.memory ?? '0', 'quantity')).toBeGreaterThan(
        bytes(config.duckdb.memory_limit, 'duckdb'),
      );
    }
  });
});

describe('the AWS Batch example (array job + merge)', () => {
  const read = (file: string) => JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Json;
  const definition = read('aws-batch-job.json') as {
    jobDefinitionName: string;
    parameters: Record<string, string>;
    containerProperties: { command: string[]; resourceRequirements: { type: string; value: string }[] };
  };
  const shards = read('aws-batch-submit-shards.json') as {
    jobDefinition: string;
    arrayProperties: { size: number };
    parameters: Record<string, string>;
  };
  const merge = read('aws-batch-submit-merge.json') as {
    jobDefinition: string;
    dependsOn: { jobId: string }[];
    containerOverrides: { command: string[] };
  };

  it('is a valid job definition and two valid submissions', () => {
    valid(jobDefinitionSchema, definition, 'aws-batch-job.json');
    valid(submitSchema, shards, 'aws-batch-submit-shards.json');
    valid(submitSchema, merge, 'aws-batch-submit-merge.json');
    expect(shards.jobDefinition).toBe(definition.jobDefinitionName);
    expect(merge.jobDefinition).toBe(definition.jobDefinitionName);
    expect(merge.dependsOn).toHaveLength(1);
  });

  it('runs every array index as its shard and merges the same count and date', () => {
    const parameters = { ...definition.parameters, ...shards.parameters };
    const args = definition.containerProperties.command.map((a) =>
      a.startsWith('Ref::') ? (parameters[a.slice(5)] ?? a) : a,
    );
    expect(args.filter((a) => a.startsWith('Ref::'))).toEqual([]);
    const run = checkCommandLine(args);
    expect(run.command).toBe('run');
    const size = shards.arrayProperties.size;
    for (let index = 0; index < size; index++) {
      const spec = resolveShard(
        { shards: run.options['--shards'] },
        { AWS_BATCH_JOB_ARRAY_INDEX: String(index) },
      );
      expect(spec).toEqual({ index, count: size });
    }
    const merged = checkCommandLine(merge.containerOverrides.command);
    expect(merged.command).toBe('merge');
    expect(Number(merged.options['--shards'])).toBe(size);
    expect(merged.options['--as-of']).toBe(run.options['--as-of']);
    expect(merged.options['--config']).toBe(run.options['--config']);
  });

  it('names a valid churn config, with memory above DuckDB limit', () => {
    const config = churnConfig(readFileSync(join(DIR, 'churn.yaml'), 'utf8'), 'examples/shards/churn.yaml');
    const memory = definition.containerProperties.resourceRequirements.find((r) => r.type === 'MEMORY');
    expect(bytes(memory?.value ?? '0', 'mib')).toBeGreaterThan(bytes(config.duckdb.memory_limit, 'duckdb'));
    expect(definition.parameters.config).toBe('/work/churn.yaml');
  });
});
