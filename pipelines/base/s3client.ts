// The S3 client shared by the S3 source and the S3 sink: credentials from the standard AWS chain, a retry
// policy for throttling and 5xx, and error messages that tell the user what to fix.
//
// Two retry layers:
// - the SDK retries each request (adaptive mode: exponential backoff plus client-side rate limiting when
//   S3 answers SlowDown/503); this covers every call whose request body can be replayed;
// - `withRetry` (p-retry) wraps whole-object operations the SDK cannot replay: a GetObject whose body
//   stream breaks half-way (the SDK has already returned), and an upload whose source is a file stream.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type _Object,
  GetObjectCommand,
  type GetObjectCommandOutput,
  paginateListObjectsV2,
  S3Client,
} from '@aws-sdk/client-s3';
import pRetry from 'p-retry';
import type { Logger } from './log.js';

export interface RetryPolicy {
  /** Attempts per request made by the SDK (1 = no SDK retry). */
  maxAttempts: number;
  /** Extra attempts of a whole-object operation (download, upload) after the SDK gave up or a stream broke. */
  objectRetries: number;
  /** Delay before the first whole-object retry; doubles on each further retry. */
  minRetryDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 6, objectRetries: 3, minRetryDelayMs: 1000 };

export interface S3ClientOptions {
  region: string;
  /** A custom endpoint (MinIO, s3rver, a VPC endpoint); AWS's own endpoint when absent. */
  endpoint?: string | undefined;
  forcePathStyle: boolean;
  /** Overrides the SDK's attempts per request (default DEFAULT_RETRY_POLICY.maxAttempts). */
  maxAttempts?: number;
}

/** A client for a config section (source or output) that names region, endpoint and path style. */
export function clientForConfig(
  location: { region: string; endpoint?: string; force_path_style: boolean },
  maxAttempts: number,
): S3Client {
  return createS3Client({
    region: location.region,
    endpoint: location.endpoint,
    forcePathStyle: location.force_path_style,
    maxAttempts,
  });
}

/**
 * An S3 client using the standard AWS credential chain (environment, shared config/SSO profile, web identity,
 * container or instance role): no keys in the config.
 */
export function createS3Client(options: S3ClientOptions): S3Client {
  return new S3Client({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle,
    // Checksums only where the API requires them: S3-compatible servers (MinIO versions, s3rver, Ceph) do not
    // all understand the newer default (CRC32 trailers on streamed uploads) and store such bodies corrupted.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    retryMode: 'adaptive',
    maxAttempts: options.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts,
    // A connection that cannot be opened in 10 s, or a socket idle for 2 min (a stalled body), fails the attempt.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
  });
}

/** `prefix` as a key prefix: no leading slash, one trailing slash, or '' for the bucket root. */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

/** `s3://bucket/key`, as a user names an object or a prefix. */
export function s3Url(bucket: string, key = ''): string {
  return `s3://${bucket}/${key}`;
}

/** Every object under a prefix, following ListObjectsV2 continuation tokens (1000 keys a page). */
export async function* listObjects(
  client: S3Client,
  bucket: string,
  prefix: string,
): AsyncGenerator<_Object> {
  for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix })) {
    for (const object of page.Contents ?? []) {
      if (object.Key !== undefined) yield object;
    }
  }
}

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
  Code?: unknown;
}

function shape(error: unknown): ErrorShape {
  return typeof error === 'object' && error !== null ? (error as ErrorShape) : {};
}

/** The S3 error code (`NoSuchKey`, `AccessDenied`, ...) or the Node error code (`ECONNREFUSED`). */
export function errorCode(error: unknown): string {
  const e = shape(error);
  if (typeof e.Code === 'string') return e.Code;
  if (typeof e.code === 'string') return e.code;
  if (typeof e.name === 'string') return e.name;
  return 'Error';
}

export function httpStatus(error: unknown): number | undefined {
  return shape(error).$metadata?.httpStatusCode;
}

function errorMessage(error: unknown): string {
  const message = shape(error).message;
  return typeof message === 'string' && message !== '' ? message : String(error);
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'TruncatedDownloadError',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
const THROTTLING_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded']);
const CREDENTIAL_CODES = new Set([
  'CredentialsProviderError',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'TokenRefreshRequired',
  'InvalidToken',
]);

export function isNotFound(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'NoSuchKey' || code === 'NotFound' || httpStatus(error) === 404;
}

/** A 403 without an S3 error code (HEAD responses carry no body): credentials and permissions look alike. */
export function isGenericForbidden(error: unknown): boolean {
  const code = errorCode(error);
  return (
    httpStatus(error) === 403 &&
    (code === 'Forbidden' || code === 'Unknown' || code === 'UnknownError' || code === '403')
  );
}

/** Throttling, 5xx and network failures: worth another attempt. */
export function isRetryable(error: unknown): boolean {
  const code = errorCode(error);
  if (NETWORK_CODES.has(code) || THROTTLING_CODES.has(code)) return true;
  if (shape(error).$retryable) return true;
  const status = httpStatus(error);
  if (status !== undefined) return status >= 500 || status === 429;
  return /socket hang up|premature close|aborted/i.test(errorMessage(error));
}

/**
 * What went wrong, said so that the user knows what to fix: credentials, a missing bucket, permissions, the
 * region or the endpoint. `what` names the location (`s3://bucket/prefix`), `action` the S3 permission used.
 */
export function describeS3Error(error: unknown, what: string, action: string): string {
  const code = errorCode(error);
  const status = httpStatus(error);
  const detail = `${code}${status ? ` (HTTP ${status})` : ''}: ${errorMessage(error)}`;
  if (CREDENTIAL_CODES.has(code) || /could not load credentials/i.test(errorMessage(error))) {
    return (
      `${what}: AWS credentials are missing, invalid or expired (${detail}). Credentials come from the standard AWS ` +
      'chain: set AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with an IAM role; refresh an SSO ' +
      'session with `aws sso login`.'
    );
  }
  if (code === 'NoSuchBucket' || (code === 'NotFound' && action === 's3:ListBucket')) {
    return `${what}: the bucket does not exist (${detail}). Check \`bucket\`, \`region\` and \`endpoint\` in the config.`;
  }
  if (status === 403 && isGenericForbidden(error)) {
    return (
      `${what}: access denied without details (${detail}; a HEAD request has no error body). Either the ` +
      `credentials are invalid or expired, or they lack ${action} on this bucket and prefix (see the IAM policy in ` +
      'the README), or the bucket belongs to another account.'
    );
  }
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || status === 403) {
    return (
      `${what}: permission denied (${detail}). The credentials need ${action} on this bucket and prefix ` +
      '(see the IAM policy in the README), or the bucket belongs to another account.'
    );
  }
  if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || status === 301) {
    return `${what}: the bucket is in another region (${detail}). Set \`region\` to the bucket's region.`;
  }
  if (NETWORK_CODES.has(code)) {
    return `${what}: S3 endpoint unreachable (${detail}). Check \`endpoint\`, the network and any proxy.`;
  }
  if (THROTTLING_CODES.has(code) || (status !== undefined && status >= 500)) {
    return `${what}: S3 kept failing after retries (${detail}). Run again later.`;
  }
  return `${what}: ${detail}`;
}

/**
 * Runs a whole-object operation, retrying it (fresh request, fresh streams) on throttling, 5xx and network
 * failures. Other errors, and errors wrapped in p-retry's AbortError, fail at once.
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  options: { policy: RetryPolicy; log: Logger; what: string },
): Promise<T> {
  return pRetry(operation, {
    retries: options.policy.objectRetries,
    minTimeout: options.policy.minRetryDelayMs,
    factor: 2,
    randomize: true,
    shouldRetry: ({ error }) => isRetryable(error),
    onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
      if (retriesLeft > 0 && isRetryable(error)) {
        options.log.warn(
          { object: options.what, attempt: attemptNumber, retriesLeft, error: errorCode(error) },
          'S3 transfer failed, retrying',
        );
      }
    },
  });
}

/** The object was deleted between listing and download. */
export class ObjectVanishedError extends Error {
  override readonly name = 'ObjectVanishedError';
}

/** A download that ended before Content-Length bytes arrived (a broken connection): retried. */
class TruncatedDownloadError extends Error {
  override readonly name = 'TruncatedDownloadError';
}

export interface DownloadedObject {
  etag: string | undefined;
  size: number;
}

/**
 * Streams an object to `destPath` (a temp file beside it, renamed into place when complete), so the object is
 * never whole in memory and `destPath` is never a partial file. `verify` runs on the complete temp file before
 * the rename; its errors are not retried. Retries the whole download on throttling, 5xx and broken streams.
 * Throws ObjectVanishedError when the key no longer exists.
 */
export async function downloadObject(
  client: S3Client,
  bucket: string,
  key: string,
  destPath: string,
  options: { policy: RetryPolicy; log: Logger; verify?: (tempPath: string) => Promise<void> },
): Promise<DownloadedObject> {
  const what = s3Url(bucket, key);
  return withRetry(
    async () => {
      const temp = join(dirname(destPath), `.${basename(destPath)}.${randomUUID().slice(0, 8)}.part`);
      try {
        let response: GetObjectCommandOutput;
        try {
          response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        } catch (error) {
          if (errorCode(error) === 'NoSuchKey' || httpStatus(error) === 404) {
            throw new ObjectVanishedError(`${what} no longer exists`);
          }
          throw error;
        }
        const body = response.Body;
        if (!(body instanceof Readable)) throw new Error(`${what}: the S3 response has no readable body`);
        await pipeline(body, createWriteStream(temp));
        const size = (await stat(temp)).size;
        if (response.ContentLength !== undefined && size !== response.ContentLength) {
          throw new TruncatedDownloadError(`${what}: received ${size} of ${response.ContentLength} bytes`);
        }
        await options.verify?.(temp);
        await rename(temp, destPath);
        return { etag: response.ETag, size };
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
    },
    { policy: options.policy, log: options.log, what },
  );
}
