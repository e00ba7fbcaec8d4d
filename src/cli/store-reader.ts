/**
 * Read-only views of a checkpoint store for the `resume` command (#15.4): names, metadata
 * (from the header alone), whole files and lease holders, of a folder, an S3 prefix or a
 * Redis prefix. Nothing here takes a lock or a lease, or writes: holders may be running.
 * The S3 layout comes from the store itself (s3Folder, objectKeys); the Redis one is that
 * of src/store/redis.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import type { CheckpointInfo } from '../checkpoint.js';
import { readHeadAsync } from '../codec/layout.js';
import { checkpointFile, readCheckpointInfo } from '../inspect.js';
import { isProcessAlive } from '../lock.js';
import { safeFileName } from '../naming.js';
import { baseOfLatest, generationIndex, lockFile } from '../store/file-layout.js';
import { objectKeys } from '../store/object-store.js';
import { s3Folder } from '../store/s3.js';
import { createS3Client, loadS3Sdk } from '../store/s3-client.js';
import { normalizeS3Options } from '../store/s3-options.js';
import type { StoreUrl } from './store-url.js';

/** Who holds a checkpoint's lock or lease, and whether it is live now. */
export interface Holder {
  pid: number;
  host: string;
  since?: string;
  /** The lease has not expired (remote stores), or the lock's process runs (file store). */
  live: boolean;
}

/** A checkpoint's latest generation, as a reader sees it. */
export interface StoredCheckpoint {
  info: CheckpointInfo;
  /** Generations stored, the latest included. */
  generations: number;
  /** Bytes of the latest generation. */
  bytes: number;
  location: string;
}

export interface StoreReader {
  /** The store, for messages: a folder, `s3://bucket/prefix`, `redis://host:port/prefix`. */
  readonly where: string;
  /**
   * Stored names, as the store keys them: file-safe names (`safeFileName`) for folders, the
   * S3 store's folder names (0.1's, `s3Folder`) for S3, names for Redis. `key(name)` gives the
   * form of a name to look for among them.
   */
  names(): Promise<string[]>;
  key(name: string): string;
  /** Metadata of the latest generation of `name`, or undefined when there is none. */
  stat(name: string): Promise<StoredCheckpoint | undefined>;
  /** Whole bytes of the latest generation of `name`, or undefined when there is none. */
  read(name: string): Promise<Uint8Array | undefined>;
  /** The lock or lease of `name`, if any. */
  holder(name: string): Promise<Holder | undefined>;
  close(): Promise<void>;
}

/** What `stat` returns for a shared store's latest generation, from its manifest and head. */
async function statOf(
  found: { manifest: { generations: unknown[] }; first: { size: number } },
  location: string,
  head: (end: number) => Promise<Uint8Array>,
): Promise<StoredCheckpoint> {
  return {
    info: (await readHeadAsync(head, location, found.first.size)).header.meta,
    generations: found.manifest.generations.length,
    bytes: found.first.size,
    location,
  };
}

/** A reader for `--store` or `--dir`. */
export function storeReader(store: StoreUrl | undefined, dir: string): StoreReader {
  if (store === undefined) return folderReader(dir);
  return store.kind === 's3' ? s3Reader(store.options) : redisReader(store);
}

function folderReader(dir: string): StoreReader {
  const missing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';
  return {
    where: dir,
    async names() {
      try {
        return readdirSync(dir).flatMap((e) => baseOfLatest(e) ?? []);
      } catch (err) {
        if (missing(err)) return [];
        throw err;
      }
    },
    key: safeFileName,
    async stat(name) {
      const file = checkpointFile(dir, name);
      try {
        const info = readCheckpointInfo(file);
        const base = baseOfLatest(basename(file))!;
        const older = readdirSync(dir).filter((e) => (generationIndex(e, base) ?? 0) > 0);
        return { info, generations: 1 + older.length, bytes: info.storedBytes, location: file };
      } catch (err) {
        if (missing(err)) return undefined;
        throw err;
      }
    },
    async read(name) {
      try {
        return readFileSync(checkpointFile(dir, name));
      } catch (err) {
        if (missing(err)) return undefined;
        throw err;
      }
    },
    async holder(name) {
      let lock: { pid: number; host: string; since?: string };
      try {
        lock = JSON.parse(readFileSync(join(dir, lockFile(safeFileName(name))), 'utf8'));
      } catch {
        return undefined;
      }
      // Another host's process cannot be checked from here: its lock counts as live.
      const live = lock.host !== hostname() || isProcessAlive(lock.pid);
      return { pid: lock.pid, host: lock.host, ...(lock.since ? { since: lock.since } : {}), live };
    },
    async close() {},
  };
}

interface RemoteManifest {
  generations: { id: string; size: number }[];
}

function s3Reader(options: Parameters<typeof normalizeS3Options>[0]): StoreReader {
  const settings = normalizeS3Options(options);
  const { bucket, prefix } = settings;
  // The store's own layout: its folders (0.1's file names, #11.4) and keys.
  const folder = (name: string) => s3Folder(settings, name);
  const where = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
  const connection = loadS3Sdk().then((sdk) => ({ sdk, client: createS3Client(sdk, settings) }));
  connection.catch(() => {}); // reported by the first call
  const status = (err: unknown) =>
    (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  /** Bytes of `key` (from 0 to `end` - 1 when given), or undefined when it does not exist. */
  const get = async (key: string, end?: number): Promise<Uint8Array | undefined> => {
    const { sdk, client } = await connection;
    try {
      const out = await client.send(
        new sdk.GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(end === undefined ? {} : { Range: `bytes=0-${end - 1}` }),
        }),
      );
      return await out.Body!.transformToByteArray();
    } catch (err) {
      if (status(err) === 404 || (err as Error).name === 'NoSuchKey') return undefined;
      throw err;
    }
  };
  const json = async <T>(key: string): Promise<T | undefined> => {
    const bytes = await get(key);
    return bytes === undefined ? undefined : (JSON.parse(Buffer.from(bytes).toString('utf8')) as T);
  };
  const latest = async (name: string) => {
    const manifest = await json<RemoteManifest>(objectKeys.manifest(folder(name)));
    const first = manifest?.generations[0];
    return first === undefined ? undefined : { manifest: manifest!, first };
  };
  return {
    where,
    async names() {
      const { sdk, client } = await connection;
      const names: string[] = [];
      let ContinuationToken: string | undefined;
      const start = prefix === '' ? '' : `${prefix}/`;
      do {
        const out = await client.send(
          new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: start, ContinuationToken }),
        );
        for (const { Key } of out.Contents ?? []) {
          const found = objectKeys.folderOfManifest(Key ?? '', start);
          if (found !== undefined) names.push(found);
        }
        ContinuationToken = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (ContinuationToken !== undefined);
      return names;
    },
    key: (name) => s3Folder({ prefix: '' }, name),
    async stat(name) {
      const found = await latest(name);
      if (found === undefined) return undefined;
      const key = objectKeys.generation(folder(name), found.first.id);
      return statOf(
        found,
        `s3://${bucket}/${key}`,
        async (end) => (await get(key, end)) ?? new Uint8Array(),
      );
    },
    async read(name) {
      const found = await latest(name);
      return found === undefined
        ? undefined
        : get(objectKeys.generation(folder(name), found.first.id));
    },
    async holder(name) {
      const lease = await json<{ pid: number; host: string; since?: string; expiresAt: string }>(
        objectKeys.lease(folder(name)),
      );
      if (lease === undefined) return undefined;
      const live = Date.parse(lease.expiresAt) > Date.now();
      return {
        pid: lease.pid,
        host: lease.host,
        ...(lease.since ? { since: lease.since } : {}),
        live,
      };
    },
    async close() {
      (await connection.catch(() => undefined))?.client.destroy();
    },
  };
}

function redisReader(store: Extract<StoreUrl, { kind: 'redis' }>): StoreReader {
  const { prefix } = store;
  const key = (name: string, suffix: string) => `${prefix}:${name}:${suffix}`;
  type Client = import('ioredis').Redis;
  const connection: Promise<Client> = import('ioredis').then(
    ({ Redis }) =>
      new Redis(store.url, {
        lazyConnect: false,
        enableOfflineQueue: true,
        maxRetriesPerRequest: 1,
        connectTimeout: 3000,
        commandTimeout: 5000,
        retryStrategy: () => null,
      }),
    (err: unknown) => {
      throw new Error(
        'reading a redis:// store needs the optional package ioredis: npm install ioredis',
        {
          cause: err,
        },
      );
    },
  );
  connection.catch(() => {}); // reported by the first call
  const latest = async (client: Client, name: string) => {
    const raw = await client.get(key(name, 'manifest'));
    const manifest = raw === null ? undefined : (JSON.parse(raw) as RemoteManifest);
    const first = manifest?.generations[0];
    return first === undefined ? undefined : { manifest: manifest!, first };
  };
  return {
    where: store.shown,
    async names() {
      const client = await connection;
      const names: string[] = [];
      const suffix = ':manifest';
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(
          cursor,
          'MATCH',
          `${prefix}:*${suffix}`,
          'COUNT',
          1000,
        );
        for (const k of keys) names.push(k.slice(prefix.length + 1, -suffix.length));
        cursor = next;
      } while (cursor !== '0');
      return names;
    },
    key: (name) => name,
    async stat(name) {
      const client = await connection;
      const found = await latest(client, name);
      if (found === undefined) return undefined;
      const chunk = key(name, `gen:${found.first.id}:0`);
      return statOf(
        found,
        `${store.shown}:${name}@${found.first.id}`,
        async (end) => (await client.getrangeBuffer(chunk, 0, end - 1)) ?? new Uint8Array(),
      );
    },
    async read(name) {
      const client = await connection;
      const found = await latest(client, name);
      if (found === undefined) return undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      for (let i = 0; size < found.first.size; i++) {
        const chunk = await client.getBuffer(key(name, `gen:${found.first.id}:${i}`));
        if (chunk === null || chunk.byteLength === 0) break;
        chunks.push(chunk);
        size += chunk.byteLength;
      }
      return Buffer.concat(chunks);
    },
    async holder(name) {
      const client = await connection;
      const raw = await client.get(key(name, 'lease'));
      if (raw === null) return undefined;
      const lease = JSON.parse(raw) as { pid: number; host: string; since?: string };
      // The lease key lives only as long as its TTL: while it exists it is live.
      return {
        pid: lease.pid,
        host: lease.host,
        ...(lease.since ? { since: lease.since } : {}),
        live: true,
      };
    },
    async close() {
      const client = await connection.catch(() => undefined);
      await client?.quit().catch(() => client.disconnect());
    },
  };
}
