/**
 * The Redis store (createRedisStore, the store the background thread runs) against a real
 * redis-server started per suite: the store contract, chunk layout and trimming, leases
 * with fencing, a server that stops and comes back, and writers SIGKILLed mid-upload.
 * Keys are inspected with a separate raw ioredis client.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { CheckpointLockedError, Random, StoreError } from '../dist/index.js';
import { redisStore } from '../dist/redis.js';
import { createRedisStore, type RedisStoreOptions } from '../dist/store/redis.js';
import type { AsyncCheckpointStore, RemoteGeneration } from '../dist/store/remote.js';
// @ts-expect-error: a plain .mjs fixture without types
import { checkPayload, payload } from './fixtures/redis/payload.mjs';
import { rejectionOf, thrownBy } from './helpers.js';
import { describeRedis, type RedisServer, startRedis } from './servers/redis.js';
import { describeAsyncStoreContract } from './store-contract.js';

const MiB = 1024 * 1024;
const made: string[] = [];
const stores: AsyncCheckpointStore[] = [];
let prefixes = 0;

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rs-redis-store-'));
  made.push(dir);
  return dir;
}

/** A fresh prefix per test, so tests sharing a server never see each other's keys. */
const freshPrefix = () => `t${process.pid}-${++prefixes}`;

function store(server: RedisServer, options: RedisStoreOptions): AsyncCheckpointStore {
  const made = createRedisStore({ url: server.url, ...options });
  stores.push(made);
  return made;
}

const owner = (pid: number, host: string) => ({ pid, host, since: '2026-11-24T12:00:00.000Z' });

/** Deterministic bytes, cut into parts of the given sizes. */
function parts(sizes: number[], seed = 1): Buffer[] {
  let x = seed;
  return sizes.map((size) => {
    const part = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) part[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    return part;
  });
}

async function downloaded(
  s: AsyncCheckpointStore,
  name: string,
  generation: RemoteGeneration,
): Promise<Buffer> {
  const path = join(tempDir(), 'download');
  await s.download(name, generation, path);
  return readFileSync(path);
}

/**
 * A TCP proxy to `port` whose client-to-server direction can be cut after `budget` more
 * bytes and resumed later: one client stalled (as behind a partition or a hung host)
 * while every other client of the server goes on.
 */
async function stallableProxy(port: number) {
  let budget = Number.POSITIVE_INFINITY;
  const held: { upstream: Socket; data: Buffer }[] = [];
  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const upstream = createConnection({ port, host: '127.0.0.1' });
    sockets.add(client).add(upstream);
    client.on('data', (data: Buffer) => {
      if (held.length > 0 || data.byteLength > budget) {
        const passed = Math.max(0, Math.min(budget, data.byteLength));
        if (passed > 0) upstream.write(data.subarray(0, passed));
        budget -= passed;
        held.push({ upstream, data: data.subarray(passed) });
        return;
      }
      budget -= data.byteLength;
      upstream.write(data);
    });
    upstream.pipe(client);
    for (const socket of [client, upstream]) {
      socket.on('error', () => {});
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  return {
    url: `redis://127.0.0.1:${(proxy.address() as { port: number }).port}`,
    /** Forwards `bytes` more bytes from clients, then holds the rest. */
    stallAfter(bytes: number) {
      budget = bytes;
    },
    resume() {
      budget = Number.POSITIVE_INFINITY;
      for (const { upstream, data } of held.splice(0)) upstream.write(data);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      proxy.close();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const chunkKeys = (prefix: string, name: string, id: string, count: number) =>
  Array.from({ length: count }, (_, i) => `${prefix}:${name}:gen:${id}:${i}`);

describeRedis('Redis store: contract and layout', () => {
  let server: RedisServer;
  let raw: Redis;
  const keys = async (prefix: string) => (await raw.keys(`${prefix}:*`)).sort();

  beforeAll(async () => {
    server = await startRedis();
    raw = new Redis(server.url);
  });
  afterAll(async () => {
    raw.disconnect();
    await server.dispose();
  });

  describeAsyncStoreContract('createRedisStore', (prefix) =>
    createRedisStore({ url: server.url, prefix }),
  );

  it('lists no generations for a name never written', async () => {
    const s = store(server, { prefix: freshPrefix() });
    expect(await s.generations('none')).toEqual([]);
  });

  it('writes a generation and lists it with its size, time and token', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix });
    const before = Date.now();
    const written = await s.write('a', [Buffer.from('hello '), Buffer.from('world')], 2);
    expect(written).toEqual({ id: written.id, size: 11, savedAt: written.savedAt, token: 0 });
    expect(written.id).toMatch(/^[0-9a-z]{9}-[0-9a-f]{12}$/);
    expect(Date.parse(written.savedAt)).toBeGreaterThanOrEqual(before - 1);
    expect(await s.generations('a')).toEqual([written]);
    expect(await keys(prefix)).toEqual([`${prefix}:a:gen:${written.id}:0`, `${prefix}:a:manifest`]);
    expect((await downloaded(s, 'a', written)).toString()).toBe('hello world');
    expect(s.locate('a')).toBe(`${server.url}/${prefix}:a`);
  });

  it('stores 20 MB given in parts of odd sizes as 1 MiB chunks and downloads it intact', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix, chunkSize: MiB });
    const sizes = [1, 3_333_333, 7, 9_999_991, MiB, 5_618_092];
    const data = parts(sizes);
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(total).toBe(20_000_000);
    const written = await s.write('big', data, 2);
    expect(written.size).toBe(20_000_000);
    const chunks = chunkKeys(prefix, 'big', written.id, 20);
    expect(await keys(prefix)).toEqual([...chunks, `${prefix}:big:manifest`].sort());
    for (const key of chunks.slice(0, -1)) expect(await raw.strlen(key)).toBe(MiB);
    expect(await raw.strlen(chunks.at(-1)!)).toBe(20_000_000 - 19 * MiB);
    expect((await downloaded(s, 'big', written)).equals(Buffer.concat(data))).toBe(true);
  });

  it('stores an empty generation as one empty chunk', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix });
    const written = await s.write('empty', [], 1);
    expect(written.size).toBe(0);
    expect(await keys(prefix)).toEqual([
      `${prefix}:empty:gen:${written.id}:0`,
      `${prefix}:empty:manifest`,
    ]);
    expect((await downloaded(s, 'empty', written)).byteLength).toBe(0);
  });

  it('keeps the newest `keep` generations and deletes the chunks of older ones', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix, chunkSize: 1000 });
    const g1 = await s.write('k', parts([2500], 1), 2);
    const g2 = await s.write('k', parts([1500], 2), 2);
    const g3 = await s.write('k', parts([999, 2], 3), 2);
    expect(await s.generations('k')).toEqual([g3, g2]);
    expect(await keys(prefix)).toEqual(
      [
        ...chunkKeys(prefix, 'k', g2.id, 2),
        ...chunkKeys(prefix, 'k', g3.id, 2),
        `${prefix}:k:manifest`,
      ].sort(),
    );
    expect((await downloaded(s, 'k', g2)).equals(parts([1500], 2)[0]!)).toBe(true);
    expect(await rejectionOf(downloaded(s, 'k', g1))).toEqual(
      new StoreError(
        `Generation ${g1.id} of ${s.locate('k')} is gone (chunk 0 missing after 0 of 2500 bytes)`,
      ),
    );
    // keep = 1 drops both older ones at once.
    const g4 = await s.write('k', parts([10], 4), 1);
    expect(await s.generations('k')).toEqual([g4]);
    expect(await keys(prefix)).toEqual([`${prefix}:k:gen:${g4.id}:0`, `${prefix}:k:manifest`]);
  });

  it('removes every key of a checkpoint, and only of that checkpoint', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix, chunkSize: 100 });
    await s.write('gone', parts([250]), 2);
    await s.write('gone', parts([50]), 2);
    const other = await s.write('gone-not', parts([10]), 2);
    await s.remove('gone');
    expect(await s.generations('gone')).toEqual([]);
    expect(await keys(prefix)).toEqual([
      `${prefix}:gone-not:gen:${other.id}:0`,
      `${prefix}:gone-not:manifest`,
    ]);
    await s.remove('gone-not');
    expect(await keys(prefix)).toEqual([]);
  });

  it('moves a checkpoint aside with its data, so new saves start fresh', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix, chunkSize: 100 });
    const g1 = await s.write('m', parts([150], 1), 2);
    const g2 = await s.write('m', parts([20], 2), 2);
    expect(await s.moveAside('m', 'expired-1')).toEqual([
      `${s.locate('m.expired-1')}:gen:${g2.id}`,
      `${s.locate('m.expired-1')}:gen:${g1.id}`,
    ]);
    expect(await s.generations('m')).toEqual([]);
    expect(await s.generations('m.expired-1')).toEqual([g2, g1]);
    expect(await keys(`${prefix}:m`)).toEqual([]);
    expect((await downloaded(s, 'm.expired-1', g1)).equals(parts([150], 1)[0]!)).toBe(true);
    // New saves under the old name never touch the moved data.
    await s.write('m', parts([5]), 1);
    await s.write('m', parts([5]), 1);
    expect(await s.generations('m.expired-1')).toEqual([g2, g1]);
    expect(await s.moveAside('nothing', 'x')).toEqual([]);
    expect(await rejectionOf(s.moveAside('m', 'expired-1'))).toEqual(
      new StoreError(`${s.locate('m.expired-1')} already exists`),
    );
  });

  it('keeps checkpoints of two prefixes apart', async () => {
    const [p1, p2] = [freshPrefix(), freshPrefix()];
    const s1 = store(server, { prefix: p1 });
    const s2 = store(server, { prefix: p2 });
    const g1 = await s1.write('same', [Buffer.from('one')], 2);
    expect(await s2.generations('same')).toEqual([]);
    const g2 = await s2.write('same', [Buffer.from('two')], 2);
    expect(await s1.generations('same')).toEqual([g1]);
    expect(await s2.generations('same')).toEqual([g2]);
    await s2.remove('same');
    expect(await s1.generations('same')).toEqual([g1]);
  });

  it('cleans up the chunks of an upload that never committed', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix, chunkSize: 10 });
    const kept = await s.write('c', parts([25]), 2);
    // What a writer killed mid-upload leaves: listed as pending, some chunks uploaded.
    await raw.hset(`${prefix}:c:pending`, 'dead-upload', 3);
    await raw.set(`${prefix}:c:gen:dead-upload:0`, 'x'.repeat(10));
    await raw.set(`${prefix}:c:gen:dead-upload:1`, 'x'.repeat(10));
    await s.cleanup('c');
    expect(await keys(prefix)).toEqual(
      [...chunkKeys(prefix, 'c', kept.id, 3), `${prefix}:c:manifest`].sort(),
    );
    expect(await s.generations('c')).toEqual([kept]);
  });

  it('rejects bad options and a bad keep with TypeError or RangeError', async () => {
    expect(() => createRedisStore({ chunkSize: 0 })).toThrow(
      new RangeError('Expected `chunkSize` to be an integer from 1 to 536870912, got `0` (number)'),
    );
    expect(() => createRedisStore({ leaseTtl: '5s' as unknown as number })).toThrow(
      new TypeError("Expected `leaseTtl` to be an integer, got `'5s'` (string)"),
    );
    expect(() => createRedisStore({ prefix: '' })).toThrow(
      new TypeError("Expected `prefix` to be a non-empty string, got `''` (string)"),
    );
    const s = store(server, { prefix: freshPrefix() });
    expect(await rejectionOf(s.write('x', [], 0))).toEqual(
      new RangeError('Expected `keep` to be an integer from 1 to 1000, got `0` (number)'),
    );
  });

  it('names the missing optional dependency when ioredis cannot be loaded', async () => {
    // A copy of dist/ in a folder with no node_modules above it, loaded by plain node (not
    // through vitest's resolver): there `import('ioredis')` fails.
    const dir = tempDir();
    cpSync(fileURLToPath(new URL('../dist', import.meta.url)), join(dir, 'dist'), {
      recursive: true,
    });
    const script = `
      const { createRedisStore } = await import(${JSON.stringify(join(dir, 'dist/store/redis.js'))});
      try { await createRedisStore({}).generations('x'); } catch (err) {
        console.log(JSON.stringify([err.name, err.code, err.message, err.cause.code]));
      }`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual([
      'StoreError',
      'CHECKPOINT_STORE',
      'resumable-state/redis needs the optional package ioredis: npm install ioredis',
      'ERR_MODULE_NOT_FOUND',
    ]);
  });

  it('never keeps a process alive once idle, even holding a lease and never closed', async () => {
    const script = `
      const { createRedisStore } = await import(${JSON.stringify(fileURLToPath(new URL('../dist/store/redis.js', import.meta.url)))});
      const s = createRedisStore({ url: '${server.url}', prefix: '${freshPrefix()}' });
      await s.lock('idle', { pid: process.pid, host: 'h', since: 'now' });
      await s.write('idle', [Buffer.from('abc')], 2);
      console.log('written');`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out).toBe('written\n');
  });

  it('lets a top-level await of close() finish the process normally', () => {
    const script = `
      const { createRedisStore } = await import(${JSON.stringify(fileURLToPath(new URL('../dist/store/redis.js', import.meta.url)))});
      const s = createRedisStore({ url: '${server.url}', prefix: '${freshPrefix()}' });
      await s.write('quit', [Buffer.from('abc')], 2);
      await s.close();
      console.log('closed');`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({
      status: 0,
      stdout: 'closed\n',
      stderr: '',
    });
  });

  it('redisStore() checks its options on the calling thread, and that they can cross threads', () => {
    expect(() => redisStore({ chunkSize: -1 })).toThrow(
      new RangeError(
        'Expected `chunkSize` to be an integer from 1 to 536870912, got `-1` (number)',
      ),
    );
    const err = thrownBy(() => redisStore({ redis: { retryStrategy: () => 100 } })) as TypeError;
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe(
      'Expected redisStore() options to be plain data: they are sent to a background thread, which a live ioredis client or a function cannot reach',
    );
    expect((err.cause as Error).name).toBe('DataCloneError');
  });
});

describeRedis('Redis store: lease and fencing', () => {
  let server: RedisServer;
  let raw: Redis;

  beforeAll(async () => {
    server = await startRedis();
    raw = new Redis(server.url);
  });
  afterAll(async () => {
    raw.disconnect();
    await server.dispose();
  });

  /** Waits (at most 5 s) until the lease key of `name` has expired. */
  async function leaseExpired(prefix: string, name: string): Promise<void> {
    for (let i = 0; i < 100 && (await raw.exists(`${prefix}:${name}:lease`)) === 1; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await raw.exists(`${prefix}:${name}:lease`)).toBe(0);
  }

  it('refuses a second holder, naming the first one, until the first unlocks', async () => {
    const prefix = freshPrefix();
    const a = store(server, { prefix });
    const b = store(server, { prefix });
    await a.lock('l', owner(111, 'host-a'));
    const err = await rejectionOf(b.lock('l', owner(222, 'host-b')));
    expect(err).toBeInstanceOf(CheckpointLockedError);
    expect(err).toMatchObject({
      code: 'CHECKPOINT_LOCKED',
      pid: 111,
      host: 'host-a',
      message: `Checkpoint "l" is locked by pid 111 on host host-a since 2026-11-24T12:00:00.000Z (${server.url}/${prefix}:l)`,
    });
    const record = JSON.parse((await raw.get(`${prefix}:l:lease`))!);
    expect(record).toEqual({
      id: record.id,
      pid: 111,
      host: 'host-a',
      since: '2026-11-24T12:00:00.000Z',
      token: 1,
    });
    await a.unlock('l');
    expect(await raw.exists(`${prefix}:l:lease`)).toBe(0);
    await b.lock('l', owner(222, 'host-b'));
    expect(JSON.parse((await raw.get(`${prefix}:l:lease`))!)).toMatchObject({ pid: 222, token: 2 });
    expect((await b.write('l', [Buffer.from('x')], 2)).token).toBe(2);
  });

  it('lets the same store take a lease it holds again, released by as many unlocks', async () => {
    const prefix = freshPrefix();
    const a = store(server, { prefix });
    await a.lock('r', owner(1, 'h'));
    await a.lock('r', owner(1, 'h'));
    await a.unlock('r');
    expect(await raw.exists(`${prefix}:r:lease`)).toBe(1);
    await a.unlock('r');
    expect(await raw.exists(`${prefix}:r:lease`)).toBe(0);
  });

  it('keeps step journals: appends in order, lists them oldest first, drops, moves and removes them', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix });
    const magic = Buffer.from('MAGIC|');
    expect(await s.journal!.read('j')).toEqual([]);
    expect(await s.journal!.lastModified('j')).toBe(undefined);
    await s.journal!.append('j', 20, magic, Buffer.from('c'));
    await s.journal!.append('j', 10, magic, Buffer.from('a'));
    await s.journal!.append('j', 10, magic, Buffer.from('b'));
    const read = await s.journal!.read('j');
    expect(read.map((j) => [j.epoch, Buffer.from(j.bytes).toString(), j.location])).toEqual([
      [10, 'MAGIC|ab', `${server.url}/${prefix}:j:journal:10`],
      [20, 'MAGIC|c', `${server.url}/${prefix}:j:journal:20`],
    ]);
    expect(Date.now() - (await s.journal!.lastModified('j'))!).toBeLessThan(10_000);
    await s.journal!.drop('j', 20);
    expect((await s.journal!.read('j')).map((j) => j.epoch)).toEqual([20]);
    await s.write('j', [Buffer.from('state')], 2);
    expect(await s.moveAside('j', 'old')).toHaveLength(1);
    expect(await s.journal!.read('j')).toEqual([]);
    expect((await s.journal!.read('j.old')).map((j) => j.epoch)).toEqual([20]);
    await s.remove('j.old');
    expect(await raw.keys(`${prefix}:j.old:*`)).toEqual([]);
  });

  it('refuses journal appends and drops to a holder that was taken over', async () => {
    const prefix = freshPrefix();
    const a = store(server, { prefix, leaseTtl: 1000 });
    const b = store(server, { prefix, leaseTtl: 1000 });
    await a.lock('jf', owner(111, 'host-a'));
    await a.journal!.append('jf', 1, Buffer.from('M'), Buffer.from('x'));
    await a.close();
    await leaseExpired(prefix, 'jf');
    await b.lock('jf', owner(222, 'host-b'));
    // Both handled at once: the second may reject while the first is awaited.
    const errors = await Promise.all([
      rejectionOf(a.journal!.append('jf', 1, Buffer.from('M'), Buffer.from('late'))),
      rejectionOf(a.journal!.drop('jf', 5)),
    ]);
    for (const err of errors) {
      expect(err).toBeInstanceOf(CheckpointLockedError);
      expect(err).toMatchObject({ pid: 222, host: 'host-b' });
    }
    expect((await b.journal!.read('jf')).map((j) => Buffer.from(j.bytes).toString())).toEqual([
      'Mx',
    ]);
  });

  it('fences out a holder whose lease expired and was taken over', async () => {
    const prefix = freshPrefix();
    const a = store(server, { prefix, leaseTtl: 1000 });
    const b = store(server, { prefix, leaseTtl: 1000 });
    await a.lock('f', owner(111, 'host-a'));
    const first = await a.write('f', [Buffer.from('by a')], 2);
    expect(first.token).toBe(1);
    // A stops renewing, as a holder that hangs or is cut off from the server.
    await a.close();
    await leaseExpired(prefix, 'f');
    await b.lock('f', owner(222, 'host-b'));
    const manifest = await raw.get(`${prefix}:f:manifest`);

    const err = await rejectionOf(a.write('f', [Buffer.from('late write by a')], 2));
    expect(err).toBeInstanceOf(CheckpointLockedError);
    expect(err).toMatchObject({
      pid: 222,
      host: 'host-b',
      message: `Checkpoint "f" was taken over by pid 222 on host host-b (token 2) while this writer (token 1) held it; the save was not committed (${server.url}/${prefix}:f)`,
    });
    expect(await raw.get(`${prefix}:f:manifest`)).toBe(manifest);
    expect(await a.generations('f')).toEqual([first]);

    const second = await b.write('f', [Buffer.from('by b')], 2);
    expect(second.token).toBe(2);
    expect(await b.generations('f')).toEqual([second, first]);
    // A deleted its refused upload itself.
    expect((await raw.keys(`${prefix}:f:*`)).sort()).toEqual(
      [
        `${prefix}:f:fence`,
        `${prefix}:f:gen:${first.id}:0`,
        `${prefix}:f:gen:${second.id}:0`,
        `${prefix}:f:lease`,
        `${prefix}:f:manifest`,
      ].sort(),
    );
    // Even once B is gone, A's old token cannot commit over B's newer one.
    await b.unlock('f');
    const again = await rejectionOf(a.write('f', [Buffer.from('later still')], 2));
    expect(again).toMatchObject({
      code: 'CHECKPOINT_LOCKED',
      message: `Checkpoint "f" was taken over by a writer with a newer fencing token while this writer (token 1) held it; the save was not committed (${server.url}/${prefix}:f)`,
    });
  });

  it('refuses a commit once a newer lease was handed out, even to a holder that never committed', async () => {
    const prefix = freshPrefix();
    const CHUNK = 64 * 1024;
    const proxy = await stallableProxy(server.port);
    try {
      // A reaches the server through a proxy that can stall it; B and the checks do not.
      const a = createRedisStore({
        url: proxy.url,
        prefix,
        leaseTtl: 600,
        chunkSize: CHUNK,
        redis: { commandTimeout: 30_000 },
      });
      stores.push(a);
      const b = store(server, { prefix, leaseTtl: 600 });
      const check = store(server, { prefix });
      await a.lock('s', owner(111, 'host-a'));
      const good = await a.write('s', parts([3 * CHUNK], 1), 1);

      // A stalls mid-upload, past its lease's expiry: its first chunk lands, the rest wait.
      proxy.stallAfter(CHUNK + CHUNK / 2);
      const writing = rejectionOf(a.write('s', parts([8 * CHUNK], 2), 1));
      for (let i = 0; i < 100 && (await raw.hlen(`${prefix}:s:pending`)) === 0; i++)
        await sleep(20);
      const [late] = await raw.hkeys(`${prefix}:s:pending`);
      expect(await raw.exists(`${prefix}:s:gen:${late}:0`)).toBe(1);
      await leaseExpired(prefix, 's');
      // B takes the lease, cleans up (deleting A's first chunk) and lets go without saving.
      await b.lock('s', owner(222, 'host-b'));
      await b.cleanup('s');
      expect(await raw.exists(`${prefix}:s:gen:${late}:0`, `${prefix}:s:pending`)).toBe(0);
      await b.unlock('s');

      // A resumes: its later chunks land, but its commit must not take the lease back.
      proxy.resume();
      const err = await writing;
      expect(err).toBeInstanceOf(CheckpointLockedError);
      expect(err).toMatchObject({
        code: 'CHECKPOINT_LOCKED',
        message: `Checkpoint "s" was taken over by a writer with a newer fencing token while this writer (token 1) held it; the save was not committed (${a.locate('s')})`,
      });
      expect(await check.generations('s')).toEqual([good]);
      expect((await downloaded(check, 's', good)).equals(parts([3 * CHUNK], 1)[0]!)).toBe(true);
      expect((await raw.keys(`${prefix}:s:*`)).sort()).toEqual(
        [...chunkKeys(prefix, 's', good.id, 3), `${prefix}:s:fence`, `${prefix}:s:manifest`].sort(),
      );
    } finally {
      await proxy.close();
    }
  });

  it('refuses remove, moveAside and cleanup to a holder whose lease was taken over', async () => {
    const prefix = freshPrefix();
    const a = store(server, { prefix, leaseTtl: 300 });
    const b = store(server, { prefix, leaseTtl: 300 });
    await a.lock('rm', owner(111, 'host-a'));
    await a.write('rm', [Buffer.from('by a')], 2);
    await a.close();
    await leaseExpired(prefix, 'rm');
    await b.lock('rm', owner(222, 'host-b'));
    const mine = await b.write('rm', [Buffer.from('by b')], 2);
    // B's next save, under way.
    await raw.hset(`${prefix}:rm:pending`, 'b-upload', 1);
    await raw.set(`${prefix}:rm:gen:b-upload:0`, 'uploading');
    const before = (await raw.keys(`${prefix}:rm*`)).sort();

    const ops = [() => a.remove('rm'), () => a.moveAside('rm', 'aside'), () => a.cleanup('rm')];
    for (const op of ops) {
      const err = await rejectionOf(op());
      expect(err).toBeInstanceOf(CheckpointLockedError);
      expect(err).toMatchObject({
        pid: 222,
        host: 'host-b',
        message: expect.stringMatching(
          /^Checkpoint "rm" was taken over by pid 222 on host host-b \(token 2\) while this writer \(token 1\) held it; /,
        ),
      });
    }
    expect((await raw.keys(`${prefix}:rm*`)).sort()).toEqual(before);
    // Still refused once B let go: a newer lease was handed out.
    await b.unlock('rm');
    expect(await rejectionOf(a.remove('rm'))).toMatchObject({ code: 'CHECKPOINT_LOCKED' });
    expect(await b.generations('rm')).toEqual([mine, expect.anything()]);

    // The holder itself may.
    await b.lock('rm', owner(222, 'host-b'));
    await b.cleanup('rm');
    expect(await raw.exists(`${prefix}:rm:gen:b-upload:0`)).toBe(0);
    expect((await b.moveAside('rm', 'aside')).length).toBe(2);
    await b.write('rm', [Buffer.from('again')], 2);
    await b.remove('rm');
    expect(await b.generations('rm')).toEqual([]);
    await b.unlock('rm');
  });

  it('takes its own expired lease back at a commit when nobody else took it', async () => {
    const prefix = freshPrefix();
    const a = store(server, { prefix, leaseTtl: 300 });
    await a.lock('own', owner(111, 'host-a'));
    await a.close();
    await leaseExpired(prefix, 'own');
    expect((await a.write('own', [Buffer.from('x')], 2)).token).toBe(1);
    expect(JSON.parse((await raw.get(`${prefix}:own:lease`))!)).toMatchObject({
      pid: 111,
      token: 1,
    });
  });

  it('renews a held lease, so it outlives three times its ttl', async () => {
    const prefix = freshPrefix();
    const a = store(server, { prefix, leaseTtl: 600 });
    const b = store(server, { prefix, leaseTtl: 600 });
    await a.lock('renew', owner(111, 'host-a'));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(await raw.pttl(`${prefix}:renew:lease`)).toBeGreaterThan(0);
    expect(await rejectionOf(b.lock('renew', owner(222, 'host-b')))).toBeInstanceOf(
      CheckpointLockedError,
    );
    await a.unlock('renew');
  });
});

describeRedis('Redis store: a server that stops and comes back', () => {
  let server: RedisServer;
  let raw: Redis;

  beforeAll(async () => {
    // Appendonly with fsync per write: committed data survives the restart, as on a real server.
    server = await startRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
    raw = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    raw.on('error', () => {});
  });
  afterAll(async () => {
    raw.disconnect();
    await server.dispose();
  });

  it('fails a save within seconds while the server is down, and saves again once it is back', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix, chunkSize: MiB });
    const committed = await s.write('down', parts([3 * MiB]), 2);
    await server.stop();

    const started = Date.now();
    const err = (await rejectionOf(s.write('down', parts([MiB], 2), 2))) as StoreError;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(StoreError);
    expect(err.message).toBe(
      `Redis store could not write ${server.url}/${prefix}:down: ${(err.cause as Error).message}`,
    );
    // Refused while reconnecting; or, if the save raced the client noticing the close, its
    // command was dropped after one retry.
    expect((err.cause as Error).message).toMatch(
      /^(connect ECONNREFUSED 127\.0\.0\.1:\d+|Reached the max retries per request limit \(which is 1\)\..*)$/,
    );

    await server.start();
    const next = await s.write('down', parts([MiB], 3), 2);
    expect(await s.generations('down')).toEqual([next, committed]);
    expect((await downloaded(s, 'down', committed)).equals(parts([3 * MiB])[0]!)).toBe(true);
  });

  it('fails a save cut off in the middle of its upload within seconds', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix, chunkSize: 64 * 1024 });
    const committed = await s.write('cut', parts([MiB]), 2);
    // The server holds every command from now on, so the upload is surely in flight when
    // the server goes away.
    await raw.connect();
    await raw.client('PAUSE', 20_000, 'ALL');
    const started = Date.now();
    const writing = rejectionOf(s.write('cut', parts([4 * MiB], 2), 2));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await server.stop();
    const err = (await writing) as StoreError;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(StoreError);
    // Commands in flight when the connection drops get one retry, then fail.
    expect(err.cause).toMatchObject({
      name: 'MaxRetriesPerRequestError',
      message:
        'Reached the max retries per request limit (which is 1). Refer to "maxRetriesPerRequest" option for details.',
    });
    expect(err.message).toBe(
      `Redis store could not write ${server.url}/${prefix}:cut: ${(err.cause as Error).message}`,
    );

    await server.start();
    expect(await s.generations('cut')).toEqual([committed]);
    const next = await s.write('cut', parts([MiB], 3), 2);
    await s.cleanup('cut');
    expect((await raw.keys(`${prefix}:cut:*`)).sort()).toEqual(
      [
        ...chunkKeys(prefix, 'cut', committed.id, 16),
        ...chunkKeys(prefix, 'cut', next.id, 16),
        `${prefix}:cut:manifest`,
      ].sort(),
    );
  });
});

describeRedis('Redis store: a server that stops answering (SIGSTOP)', () => {
  let server: RedisServer;
  let raw: Redis;
  let pid: number;

  beforeAll(async () => {
    server = await startRedis();
    raw = new Redis(server.url);
    pid = Number(/process_id:(\d+)/.exec(await raw.info('server'))![1]);
  });
  afterAll(async () => {
    process.kill(pid, 'SIGCONT');
    raw.disconnect();
    await server.dispose();
  });

  /** Runs `fn` with the server stopped, as behind a partition or on a hung host. */
  async function hung<T>(fn: () => Promise<T>): Promise<T> {
    process.kill(pid, 'SIGSTOP');
    try {
      return await fn();
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  }

  it('fails every operation with StoreError within its command timeout, then recovers', async () => {
    const prefix = freshPrefix();
    const options = { prefix, redis: { commandTimeout: 1000 } };
    const s = store(server, options);
    const g = await s.write('h', [Buffer.from('before')], 2);
    await s.lock('held', owner(1, 'h'));
    const never = store(server, options); // not connected yet
    const ops: Record<string, () => Promise<unknown>> = {
      generations: () => s.generations('h'),
      download: () => s.download('h', g, join(tempDir(), 'd')),
      write: () => s.write('h', [Buffer.from('x')], 2),
      remove: () => s.remove('h'),
      moveAside: () => s.moveAside('h', 'aside'),
      lock: () => s.lock('other', owner(1, 'h')),
      cleanup: () => s.cleanup('h'),
      unlock: () => s.unlock('held'),
      connect: () => never.generations('h'),
    };
    await hung(async () => {
      for (const [what, op] of Object.entries(ops)) {
        const started = Date.now();
        const err = await rejectionOf(op());
        expect(Date.now() - started, what).toBeLessThan(4000);
        expect(err, what).toBeInstanceOf(StoreError);
      }
      const started = Date.now();
      await never.close();
      await s.close();
      expect(Date.now() - started).toBeLessThan(4000);
    });
    // Commands that timed out may still run now that the server answers again (as for any
    // request whose reply was lost); the store itself just works again.
    const next = await s.write('h', [Buffer.from('after')], 2);
    expect((await s.generations('h'))[0]).toEqual(next);
    expect((await downloaded(s, 'h', next)).toString()).toBe('after');
  });

  it('fails a 100 MB write within the default 5 s command timeout', async () => {
    const prefix = freshPrefix();
    const s = store(server, { prefix });
    expect((await s.write('big', [Buffer.from('x')], 1)).size).toBe(1);
    const data = [Buffer.alloc(100 * MiB, 7)];
    const err = (await hung(async () => {
      const started = Date.now();
      const err = await rejectionOf(s.write('big', data, 1));
      expect(Date.now() - started).toBeGreaterThanOrEqual(4500);
      expect(Date.now() - started).toBeLessThan(9000);
      return err;
    })) as StoreError;
    expect(err).toBeInstanceOf(StoreError);
    expect(err.message).toBe(
      `Redis store could not write ${server.url}/${prefix}:big: Command timed out`,
    );
    expect((await s.generations('big')).map((g) => g.size)).toEqual([1]);
  }, 60_000);
});

describeRedis('Redis store: writers killed mid-upload', () => {
  const KILLS = process.env.SOAK === '1' ? 200 : 20;
  const SEED = Number(process.env.KILL_SEED ?? Date.now() % 1_000_000);
  const FIXTURE = fileURLToPath(new URL('./fixtures/redis/writer.mjs', import.meta.url));
  const CHUNK = 64 * 1024;
  let server: RedisServer;
  let raw: Redis;
  const live = new Set<ChildProcess>();

  beforeAll(async () => {
    server = await startRedis();
    raw = new Redis(server.url);
  });
  afterAll(async () => {
    for (const child of live) child.kill('SIGKILL');
    raw.disconnect();
    await server.dispose();
  });

  /** Runs the writer from `first` and SIGKILLs it `delay` ms after its first commit. */
  function runAndKill(prefix: string, first: number, delay: number) {
    return new Promise<{ lines: string[]; stderr: string; signal: string | null }>(
      (resolve, reject) => {
        const child = spawn(process.execPath, [FIXTURE, server.url, prefix, 'crash', `${first}`], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        live.add(child);
        let stdout = '';
        let stderr = '';
        const hang = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.stdout!.setEncoding('utf8');
        child.stderr!.setEncoding('utf8');
        child.stdout!.on('data', (chunk: string) => {
          const before = stdout;
          stdout += chunk;
          if (!/\n\d+\n/.test(before) && /\n\d+\n/.test(stdout)) {
            setTimeout(() => child.kill('SIGKILL'), delay);
          }
        });
        child.stderr!.on('data', (chunk: string) => {
          stderr += chunk;
        });
        child.on('error', reject);
        child.on('close', (_code, signal) => {
          live.delete(child);
          clearTimeout(hang);
          resolve({ lines: stdout.split('\n').filter(Boolean), stderr, signal });
        });
      },
    );
  }

  it(`keeps the last committed payload intact through ${KILLS} kills at random moments`, async () => {
    const random = new Random(SEED).next;
    const prefix = freshPrefix();
    const checker = store(server, { prefix, leaseTtl: 400 });
    let next = 1;
    for (let run = 0; run < KILLS; run++) {
      const delay = Math.floor(random() * 120);
      const where = `run ${run} (seed ${SEED}, killed ${delay} ms after its first commit)`;
      const { lines, stderr, signal } = await runAndKill(prefix, next, delay);
      expect({ signal, stderr, first: lines[0] }, where).toEqual({
        signal: 'SIGKILL',
        stderr: '',
        first: 'locked',
      });
      const committed = lines.slice(1).map(Number);
      expect(committed, `${where}: commits in order`).toEqual(committed.map((_, k) => next + k));
      const last = committed.at(-1)!;

      // The latest generation is the last reported commit, or the one whose commit landed
      // just before the kill: complete, checksummed and exactly that payload.
      const generations = await checker.generations('crash');
      expect([1, 2], where).toContain(generations.length);
      const bytes = await downloaded(checker, 'crash', generations[0]!);
      const { seq, problem } = checkPayload(bytes);
      expect(problem, where).toBeUndefined();
      expect([last, last + 1], where).toContain(seq);
      expect(bytes.equals(Buffer.concat(payload(seq))), where).toBe(true);

      // Once the dead writer's lease has expired, cleanup leaves exactly the committed chunks.
      for (let i = 0; ; i++) {
        try {
          await checker.lock('crash', owner(process.pid, 'checker'));
          break;
        } catch (err) {
          if (!(err instanceof CheckpointLockedError) || i > 100) throw err;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      await checker.cleanup('crash');
      const expected = generations.flatMap((g) =>
        chunkKeys(prefix, 'crash', g.id, Math.ceil(g.size / CHUNK)),
      );
      expect((await raw.keys(`${prefix}:crash:gen:*`)).sort(), where).toEqual(expected.sort());
      expect(await raw.exists(`${prefix}:crash:pending`), where).toBe(0);
      await checker.unlock('crash');
      next = seq + 1;
    }
  });
});
