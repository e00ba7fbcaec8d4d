/**
 * Options of the Redis store: declared once, validated once (on the calling thread by
 * `redisStore()`, again where the store is built), and the location names derived from them.
 * Nothing here loads ioredis.
 */
import type { RedisOptions } from 'ioredis';
import { describe } from '../options.js';

const MiB = 1024 * 1024;

/**
 * Options of the Redis store. They are cloned into the background thread that builds the
 * store, so they must be plain data: a live ioredis client (or any function, such as a
 * `retryStrategy`) cannot cross threads. Give the connection as `url` and/or `redis`.
 */
export interface RedisStoreOptions {
  /**
   * Server to connect to: `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string;
  /** ioredis connection options (plain data only), applied over the store's defaults. */
  redis?: RedisOptions;
  /**
   * First part of every key: a checkpoint `name` lives under `<prefix>:<name>`.
   * @default 'resume'
   */
  prefix?: string;
  /**
   * Lifetime of the single-writer lease in ms; it is renewed every third of it while held,
   * and a holder that stops renewing (killed, cut off) loses it after this long.
   * @default 30_000
   */
  leaseTtl?: number;
  /**
   * Bytes per stored chunk (1 B to 512 MiB, the Redis string limit).
   * @default 8 MiB
   */
  chunkSize?: number;
  /** Local cache folder of downloaded generations, used by the synchronous bridge. */
  cache?: string;
}

/** The options with their defaults applied. */
export interface RedisSettings {
  url: string | undefined;
  redis: RedisOptions;
  prefix: string;
  leaseTtl: number;
  chunkSize: number;
}

/** Validates the options once and fills in the defaults; bad ones throw TypeError or RangeError. */
export function resolveRedisOptions(options: RedisStoreOptions = {}): RedisSettings {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
  }
  const { url, redis = {}, prefix = 'resume', leaseTtl = 30_000, chunkSize = 8 * MiB } = options;
  if (url !== undefined && typeof url !== 'string') {
    throw new TypeError(`Expected \`url\` to be a string, got ${describe(url)}`);
  }
  if (typeof redis !== 'object' || redis === null) {
    throw new TypeError(`Expected \`redis\` to be an object, got ${describe(redis)}`);
  }
  if (typeof prefix !== 'string' || prefix === '') {
    throw new TypeError(`Expected \`prefix\` to be a non-empty string, got ${describe(prefix)}`);
  }
  expectInteger('leaseTtl', leaseTtl, 100, 2 ** 31 - 1);
  expectInteger('chunkSize', chunkSize, 1, 512 * MiB);
  return { url, redis, prefix, leaseTtl, chunkSize };
}

/** Throws TypeError or RangeError unless `value` is an integer from `min` to `max`. */
export function expectInteger(option: string, value: unknown, min: number, max: number): void {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw new (typeof value === 'number' ? RangeError : TypeError)(
      `Expected \`${option}\` to be an integer from ${min} to ${max}, got ${describe(value)}`,
    );
  }
}

/** `redis://host:port[/db]/<prefix>:<name>`, without credentials: for messages and listings. */
export function redisLocation(options: RedisStoreOptions, name: string): string {
  const settings = resolveRedisOptions(options);
  return `${redisServer(settings)}/${settings.prefix}:${name}`;
}

/** `redis://host:port[/db]` of the server the settings name, without credentials. */
export function redisServer({ url, redis }: RedisSettings): string {
  let server = `redis://${redis.host ?? '127.0.0.1'}:${redis.port ?? 6379}`;
  let db = redis.db;
  if (url !== undefined) {
    try {
      const parsed = new URL(url);
      server = `${parsed.protocol}//${parsed.host}`;
      const path = parsed.pathname.replace(/^\//, '');
      if (path !== '') db ??= Number(path);
    } catch {
      server = url.replace(/\/\/[^@/]*@/, '//');
    }
  }
  return db ? `${server}/${db}` : server;
}
