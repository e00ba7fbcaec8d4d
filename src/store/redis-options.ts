/**
 * Options of the Redis store: declared once, validated once (on the calling thread by
 * `redisStore()`, whose settings are what the background thread builds the store from), and
 * the location names derived from them. Nothing here loads ioredis.
 */
import type { RedisOptions } from 'ioredis';
import {
  expectInteger,
  expectKnownKeys,
  expectObject,
  expectType,
  wrongType,
} from '../validate.js';

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

/** Every option by name (#16.4): the compiler checks it against RedisStoreOptions both ways. */
const OPTION_NAMES: { readonly [K in keyof RedisStoreOptions]-?: true } = {
  url: true,
  redis: true,
  prefix: true,
  leaseTtl: true,
  chunkSize: true,
  cache: true,
};

/** The default of every option that has one (`url`: ioredis's, `redis://127.0.0.1:6379`). */
const REDIS_DEFAULTS = {
  redis: {},
  prefix: 'resume',
  leaseTtl: 30_000,
  chunkSize: 8 * MiB,
} as const satisfies RedisStoreOptions;

/** Validates the options once and fills in the defaults; bad ones throw TypeError or RangeError. */
export function resolveRedisOptions(options: RedisStoreOptions = {}): RedisSettings {
  const o = expectObject(options);
  expectKnownKeys(o, OPTION_NAMES);
  const merged: Record<string, unknown> = { ...REDIS_DEFAULTS, ...definedOnly(o) };
  const { url, redis, prefix, leaseTtl, chunkSize } = merged;
  expectType('url', url, 'string');
  if (typeof redis !== 'object' || redis === null) throw wrongType('redis', 'an object', redis);
  if (typeof prefix !== 'string' || prefix === '') {
    throw wrongType('prefix', 'a non-empty string', prefix);
  }
  expectType('cache', o.cache, 'string');
  return {
    url: url as string | undefined,
    redis: redis as RedisOptions,
    prefix,
    leaseTtl: expectInteger('leaseTtl', leaseTtl, 100, 2 ** 31 - 1),
    chunkSize: expectInteger('chunkSize', chunkSize, 1, 512 * MiB),
  };
}

function definedOnly(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

/** `redis://host:port[/db]/<prefix>:<name>`, without credentials: for messages and listings. */
export function redisLocation(settings: RedisSettings, name: string): string {
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
