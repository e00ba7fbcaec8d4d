/**
 * Options of the S3 store: declared once with their defaults, validated once. They cross into
 * the background thread, so they hold only structured-cloneable data (no client, no provider
 * functions).
 */
import {
  expectInteger,
  expectKnownKeys,
  expectObject,
  expectType,
  wrongType,
} from '../validate.js';

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
/** Every option by name (#16.4): the compiler checks it against S3StoreOptions both ways. */
const OPTION_NAMES: { readonly [K in keyof S3StoreOptions]-?: true } = {
  bucket: true,
  prefix: true,
  region: true,
  endpoint: true,
  forcePathStyle: true,
  credentials: true,
  leaseTtl: true,
  partSize: true,
  cache: true,
};

/** The default of every option that has one. */
const S3_DEFAULTS = {
  prefix: '',
  leaseTtl: 30_000,
  partSize: 8 * MiB,
} as const satisfies Partial<S3StoreOptions>;

/**
 * Validates `options` once (TypeError/RangeError naming the option) and applies the
 * defaults. The settings, not the options, cross into the background thread (#16.4).
 */
export function normalizeS3Options(options: unknown): S3Settings {
  const o = expectObject(options);
  expectKnownKeys(o, OPTION_NAMES);
  if (typeof o.bucket !== 'string' || o.bucket === '') {
    throw wrongType('bucket', 'a non-empty string', o.bucket);
  }
  const prefix = expectType<string>('prefix', o.prefix, 'string') ?? S3_DEFAULTS.prefix;
  const region = expectType<string>('region', o.region, 'string');
  const endpoint = expectType<string>('endpoint', o.endpoint, 'string');
  expectType('cache', o.cache, 'string');
  const forcePathStyle = expectType<boolean>('forcePathStyle', o.forcePathStyle, 'boolean');
  if (endpoint !== undefined && !URL.canParse(endpoint)) {
    throw wrongType('endpoint', 'a URL', endpoint);
  }
  const settings: S3Settings = {
    bucket: o.bucket,
    prefix: prefix.replace(/^\/+|\/+$/g, ''),
    leaseTtl: expectInteger('leaseTtl', o.leaseTtl ?? S3_DEFAULTS.leaseTtl, 100, 2 ** 31 - 1),
    partSize: expectInteger('partSize', o.partSize ?? S3_DEFAULTS.partSize, MIN_PART, MAX_PART),
  };
  if (region !== undefined) settings.region = region;
  if (endpoint !== undefined) settings.endpoint = endpoint;
  if (forcePathStyle !== undefined) settings.forcePathStyle = forcePathStyle;
  if (o.credentials !== undefined) settings.credentials = credentials(o.credentials);
  return settings;
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
    const expected = '{ accessKeyId: string, secretAccessKey: string, sessionToken?: string }';
    throw wrongType('credentials', expected, value);
  }
  const out: S3Credentials = {
    accessKeyId: c.accessKeyId as string,
    secretAccessKey: c.secretAccessKey as string,
  };
  if (c.sessionToken !== undefined) out.sessionToken = c.sessionToken as string;
  return out;
}
