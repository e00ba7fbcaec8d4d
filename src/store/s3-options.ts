/**
 * Options of the S3 store: declared once with their defaults, validated once. They cross into
 * the background thread, so they hold only structured-cloneable data (no client, no provider
 * functions).
 */
import { describe } from '../options.js';

/** Static credentials; omit them to use the SDK's default provider chain (env, profile, role). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Options of `createS3Store()` and `s3Store()`. */
export interface S3StoreOptions {
  /** Bucket holding the checkpoints. */
  bucket: string;
  /**
   * Key prefix (a "folder") in front of every checkpoint: `<prefix>/<name>/…`.
   * @default none: checkpoints sit at the top of the bucket
   */
  prefix?: string;
  /** @default the SDK's default (`AWS_REGION`, the shared config file) */
  region?: string;
  /** Endpoint of an S3-compatible server (MinIO, moto, R2…), e.g. `http://127.0.0.1:9000`. */
  endpoint?: string;
  /** Address buckets as `endpoint/bucket` instead of `bucket.endpoint` (most S3-compatible servers). */
  forcePathStyle?: boolean;
  /** @default the SDK's default provider chain */
  credentials?: S3Credentials;
  /**
   * Lifetime of the single-writer lease in ms; it is renewed every third of it, so a holder
   * that dies is taken over after at most this long.
   * @default 30_000
   */
  leaseTtl?: number;
  /**
   * Bytes per multipart-upload part; larger payloads are uploaded in parts of this size (raised
   * as needed to stay within S3's 10,000 parts). From 5 MiB (S3's minimum) to 5 GiB.
   * @default 8 MiB
   */
  partSize?: number;
  /** Local cache folder, used by the synchronous bridge (`s3Store`); the store itself ignores it. */
  cache?: string;
}

/** Options with defaults applied, as the store uses them. */
export interface S3Settings {
  bucket: string;
  /** Without leading or trailing `/`; `''` for none. */
  prefix: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: S3Credentials;
  leaseTtl: number;
  partSize: number;
}

const MiB = 1024 * 1024;
const MIN_PART = 5 * MiB;
const MAX_PART = 5 * 1024 * MiB;
const KNOWN = new Set([
  'bucket',
  'prefix',
  'region',
  'endpoint',
  'forcePathStyle',
  'credentials',
  'leaseTtl',
  'partSize',
  'cache',
]);

/** Validates `options` (TypeError/RangeError naming the option) and applies the defaults. */
export function normalizeS3Options(options: unknown): S3Settings {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown option \`${key}\``);
  }
  if (typeof o.bucket !== 'string' || o.bucket === '') {
    throw new TypeError(`Expected \`bucket\` to be a non-empty string, got ${describe(o.bucket)}`);
  }
  for (const key of ['prefix', 'region', 'endpoint', 'cache']) expectString(o, key);
  if (o.forcePathStyle !== undefined && typeof o.forcePathStyle !== 'boolean') {
    throw new TypeError(
      `Expected \`forcePathStyle\` to be a boolean, got ${describe(o.forcePathStyle)}`,
    );
  }
  if (o.endpoint !== undefined && !URL.canParse(o.endpoint as string)) {
    throw new TypeError(`Expected \`endpoint\` to be a URL, got ${describe(o.endpoint)}`);
  }
  const settings: S3Settings = {
    bucket: o.bucket,
    prefix: ((o.prefix as string | undefined) ?? '').replace(/^\/+|\/+$/g, ''),
    leaseTtl: integerIn(o, 'leaseTtl', 30_000, 100, 2 ** 31 - 1),
    partSize: integerIn(o, 'partSize', 8 * MiB, MIN_PART, MAX_PART),
  };
  if (o.region !== undefined) settings.region = o.region as string;
  if (o.endpoint !== undefined) settings.endpoint = o.endpoint as string;
  if (o.forcePathStyle !== undefined) settings.forcePathStyle = o.forcePathStyle;
  if (o.credentials !== undefined) settings.credentials = credentials(o.credentials);
  return settings;
}

function expectString(o: Record<string, unknown>, key: string): void {
  if (o[key] !== undefined && typeof o[key] !== 'string') {
    throw new TypeError(`Expected \`${key}\` to be a string, got ${describe(o[key])}`);
  }
}

function integerIn(
  o: Record<string, unknown>,
  key: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = o[key] ?? fallback;
  if (typeof value !== 'number') {
    throw new TypeError(`Expected \`${key}\` to be an integer, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Expected \`${key}\` to be an integer from ${min} to ${max}, got ${describe(value)}`,
    );
  }
  return value;
}

function credentials(value: unknown): S3Credentials {
  const c = value as Record<string, unknown> | null;
  const ok =
    typeof c === 'object' &&
    c !== null &&
    typeof c.accessKeyId === 'string' &&
    typeof c.secretAccessKey === 'string' &&
    (c.sessionToken === undefined || typeof c.sessionToken === 'string');
  if (!ok) {
    throw new TypeError(
      `Expected \`credentials\` to be { accessKeyId: string, secretAccessKey: string, sessionToken?: string }, got ${describe(value)}`,
    );
  }
  const out: S3Credentials = {
    accessKeyId: c.accessKeyId as string,
    secretAccessKey: c.secretAccessKey as string,
  };
  if (c.sessionToken !== undefined) out.sessionToken = c.sessionToken as string;
  return out;
}
