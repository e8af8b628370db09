// The shards of an S3 output, under its prefix: s3://bucket/prefix/_shards/as_of=D/shard=I/... (store.ts has the
// layout). S3 has no rename: a shard's old _SUCCESS is deleted before its files are replaced, and the new one is
// uploaded after every file, so the merge never takes a half-written shard for a complete one.
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { OutputConfig } from '../../config/schema.js';
import type { Logger } from '../base/log.js';
import {
  clientForConfig,
  DEFAULT_RETRY_POLICY,
  describeS3Error,
  downloadObject,
  isNotFound,
  listObjects,
  normalizePrefix,
  s3Url,
  withRetry,
} from '../base/s3client.js';
import { ShardError } from './spec.js';
import { dateFolder, SHARD_SUCCESS, SHARDS_DIR, type ShardStore, shardFolder } from './store.js';

type S3Output = Extract<OutputConfig, { type: 's3' }>;

export class S3ShardStore implements ShardStore {
  readonly location: string;
  private readonly bucket: string;
  private readonly prefix: string;
  private clientInstance: S3Client | undefined;

  constructor(
    private readonly output: S3Output,
    asOf: string,
    /** Where a shard is written before its upload (the state_dir's tmp/). */
    private readonly scratch: string,
  ) {
    this.bucket = output.bucket;
    this.prefix = `${normalizePrefix(output.prefix)}${SHARDS_DIR}/${dateFolder(asOf)}/`;
    this.location = s3Url(this.bucket, this.prefix).replace(/\/$/, '');
  }

  private get client(): S3Client {
    this.clientInstance ??= clientForConfig(this.output, DEFAULT_RETRY_POLICY.maxAttempts);
    return this.clientInstance;
  }

  private key(index: number, name: string): string {
    return `${this.prefix}${shardFolder(index)}/${name}`;
  }

  private async s3<T>(what: string, permission: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      throw new ShardError(`shards: ${describeS3Error(error, what, permission)}`);
    }
  }

  async staging(index: number): Promise<string> {
    const dir = join(this.scratch, `shard-${index}-${process.pid}-${Date.now()}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async commit(index: number, staged: string, log: Logger): Promise<void> {
    const success = this.key(index, SHARD_SUCCESS);
    await this.s3(s3Url(this.bucket, success), 's3:DeleteObject', () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: success })),
    );
    for (const name of (await readdir(staged)).sort()) {
      const key = this.key(index, name);
      await this.s3(s3Url(this.bucket, key), 's3:PutObject', () =>
        withRetry(
          () =>
            new Upload({
              client: this.client,
              params: { Bucket: this.bucket, Key: key, Body: createReadStream(join(staged, name)) },
              queueSize: 2,
              leavePartsOnError: false,
            }).done(),
          { policy: DEFAULT_RETRY_POLICY, log, what: s3Url(this.bucket, key) },
        ),
      );
    }
    await this.s3(s3Url(this.bucket, success), 's3:PutObject', () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: success, Body: '', ContentLength: 0 }),
      ),
    );
    await rm(staged, { recursive: true, force: true });
  }

  async missing(count: number): Promise<number[]> {
    const missing: number[] = [];
    for (let i = 0; i < count; i++) {
      const key = this.key(i, SHARD_SUCCESS);
      try {
        await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      } catch (error) {
        if (!isNotFound(error)) {
          throw new ShardError(`shards: ${describeS3Error(error, s3Url(this.bucket, key), 's3:GetObject')}`);
        }
        missing.push(i);
      }
    }
    return missing;
  }

  async fetch(index: number, scratch: string, log: Logger): Promise<string> {
    const dir = join(scratch, shardFolder(index));
    await mkdir(dir, { recursive: true });
    const prefix = `${this.prefix}${shardFolder(index)}/`;
    const keys: string[] = [];
    await this.s3(s3Url(this.bucket, prefix), 's3:ListBucket', async () => {
      for await (const object of listObjects(this.client, this.bucket, prefix)) keys.push(object.Key ?? '');
    });
    for (const key of keys.filter((k) => k !== '' && !k.slice(prefix.length).includes('/'))) {
      const name = key.slice(prefix.length);
      await this.s3(s3Url(this.bucket, key), 's3:GetObject', () =>
        downloadObject(this.client, this.bucket, key, join(dir, name), { policy: DEFAULT_RETRY_POLICY, log }),
      );
    }
    return dir;
  }

  async remove(): Promise<void> {
    const keys: string[] = [];
    await this.s3(this.location, 's3:ListBucket', async () => {
      for await (const object of listObjects(this.client, this.bucket, this.prefix))
        keys.push(object.Key ?? '');
    });
    for (const key of keys.filter((k) => k !== '')) {
      await this.s3(s3Url(this.bucket, key), 's3:DeleteObject', () =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })),
      );
    }
  }

  async close(): Promise<void> {
    this.clientInstance?.destroy();
  }
}
