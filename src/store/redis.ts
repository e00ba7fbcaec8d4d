/**
 * The Redis store: checkpoints as chunked binary strings plus a manifest key, switched by a
 * fenced Lua script, with a renewed lease for single-writer ownership.
 *
 * Keys under `<prefix>:<name>`:
 * - `:gen:<id>:<i>`  chunk i of generation `id` (at most `chunkSize` bytes; Redis strings
 *   stop at 512 MB, and a few chunks in flight keep memory bounded)
 * - `:manifest`      JSON `{ token, generations }`, newest first: what is committed
 * - `:pending`       hash `id → chunk count` of data not (or no longer) in the manifest:
 *   uploads in progress or cut short, and dropped generations not yet deleted. Every chunk
 *   key is at all times in the manifest or listed here, so `cleanup` deletes exactly these
 *   and never needs to SCAN a shared server's whole keyspace.
 * - `:lease`         JSON `{ id, pid, host, since, token }` with a TTL
 * - `:fence`         counter handing out fencing tokens (never deleted, so tokens only grow)
 *
 * Cluster mode is not supported: the scripts touch several keys of one checkpoint.
 *
 * Over 400 lines: one class over one connection: the callers of the Lua scripts in
 * ./redis-scripts.ts.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import type { Redis, RedisOptions } from 'ioredis';
import { CheckpointLockedError, StoreError, UNKNOWN_OWNER } from '../errors.js';
import { expectKeep } from '../options.js';
import {
  type RedisSettings,
  type RedisStoreOptions,
  redisServer,
  resolveRedisOptions,
} from './redis-options.js';
import {
  ACQUIRE,
  COMMIT,
  DISCARD,
  JOURNAL_APPEND,
  JOURNAL_DROP,
  MOVE,
  RELEASE,
  RENEW,
  UNREFERENCE,
} from './redis-scripts.js';
import type {
  AsyncCheckpointStore,
  AsyncJournalStore,
  LeaseOwner,
  LeaseState,
  RemoteGeneration,
  RemoteJournal,
} from './remote.js';
import type { LockOwner } from './store.js';

export type { RedisStoreOptions } from './redis-options.js';

/** Chunk uploads or downloads in flight at once: enough to keep the socket busy, bounded memory. */
const WINDOW = 4;
/** How long a command waits for a lost connection to come back before failing. */
const RECONNECT_WAIT_MS = 2000;

/**
 * Client settings that make a stopped server fail a save within seconds instead of queueing
 * commands forever (ioredis's defaults: an unbounded offline queue and 20 retries per
 * command), while reconnecting in the background so a later save succeeds. A server that
 * stops answering without closing the connection (a partition, a hung or SIGSTOPped host)
 * fails each command after `commandTimeout` (per command, so a write of any size fails
 * within about that long), and TCP keepalive probes notice a dead peer on an idle socket.
 * A command that timed out may still run if the server comes back: as for any request
 * whose reply was lost, its outcome is unknown (a commit stays fenced all the same).
 */
const CLIENT_DEFAULTS = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 3000,
  commandTimeout: 5000,
  keepAlive: 10_000,
  retryStrategy: (times: number) => Math.min(times * 100, 1000),
} satisfies RedisOptions;

/**
 * Creates the Redis store. ioredis is loaded on first use (it is an optional peer
 * dependency); without it, every method throws `StoreError`.
 */
export function createRedisStore(options: RedisStoreOptions = {}): AsyncCheckpointStore {
  return new RedisStore(resolveRedisOptions(options));
}

/** The store `redisStore()` has the background thread build: from settings validated already (#16.4). */
export function createRedisStoreFromSettings(settings: RedisSettings): AsyncCheckpointStore {
  return new RedisStore(settings);
}

interface Lease {
  record: string;
  token: number;
  count: number;
  timer: NodeJS.Timeout | undefined;
}

interface ManifestEntry extends RemoteGeneration {
  chunks: number;
}

interface Manifest {
  token: number;
  generations: ManifestEntry[];
}

class RedisStore implements AsyncCheckpointStore {
  readonly #settings: RedisSettings;
  /** `redis://host:port[/db]`, for locations. */
  readonly #server: string;
  /** Random id of this instance, recorded in its leases. */
  readonly #id = randomBytes(8).toString('hex');
  readonly #leases = new Map<string, Lease>();
  #client: Promise<Redis> | undefined;
  /** The client once created (what #client resolves to). */
  #redis: Redis | undefined;
  /** Operations under way. */
  #busy = 0;
  #lastError: unknown;

  constructor(settings: RedisSettings) {
    this.#settings = settings;
    this.#server = redisServer(this.#settings);
  }

  locate(name: string): string {
    return `${this.#server}/${this.#settings.prefix}:${name}`;
  }

  async generations(name: string): Promise<RemoteGeneration[]> {
    return this.#run('read the manifest of', name, async (client) =>
      (await this.#manifest(client, name)).generations.map(({ id, size, savedAt, token }) => ({
        id,
        size,
        savedAt,
        token,
      })),
    );
  }

  async download(name: string, generation: RemoteGeneration, path: string): Promise<void> {
    let file: FileHandle | undefined;
    try {
      await this.#run(`download generation ${generation.id} of`, name, async (client) => {
        file = await open(path, 'w', 0o600);
        let written = 0;
        const get = (i: number) => {
          const got = client.getBuffer(this.#chunkKey(name, generation.id, i));
          got.catch(() => {}); // awaited below, in order; this only marks it handled meanwhile
          return got;
        };
        // The first chunk's length is the writer's chunk size, which gives the chunk count;
        // then up to WINDOW chunks are fetched ahead while earlier ones are written.
        const first = await get(0);
        const count = first?.byteLength ? Math.ceil(generation.size / first.byteLength) : 1;
        const fetching = [Promise.resolve(first)];
        for (let i = 1; i < Math.min(count, WINDOW); i++) fetching.push(get(i));
        for (let i = 0; i < count; i++) {
          const chunk = await fetching.shift()!;
          if (i + WINDOW < count) fetching.push(get(i + WINDOW));
          if (chunk === null) {
            throw new StoreError(
              `Generation ${generation.id} of ${this.locate(name)} is gone (chunk ${i} missing after ${written} of ${generation.size} bytes)`,
            );
          }
          written += chunk.byteLength;
          await file.write(chunk);
        }
        if (written !== generation.size) {
          throw new StoreError(
            `Generation ${generation.id} of ${this.locate(name)} has ${written} bytes, expected ${generation.size}`,
          );
        }
      });
      await file!.close();
    } catch (err) {
      await file?.close().catch(() => {});
      await unlink(path).catch(() => {});
      throw err;
    }
  }

  async write(name: string, parts: readonly Uint8Array[], keep: number): Promise<RemoteGeneration> {
    expectKeep(keep);
    const size = parts.reduce((sum, part) => sum + part.byteLength, 0);
    const { chunkSize, leaseTtl } = this.#settings;
    const chunks = Math.max(1, Math.ceil(size / chunkSize));
    const id = `${Date.now().toString(36).padStart(9, '0')}-${randomBytes(6).toString('hex')}`;
    const lease = this.#leases.get(name);
    const token = lease?.token ?? 0;
    const { savedAt, dropped } = await this.#run('write', name, async (client) => {
      // Each chunk lands together with the pending entry of its generation (MULTI), so every
      // chunk key is at all times either in the manifest or listed as pending, whatever dies
      // when, even a fenced-out writer still uploading after the new holder's cleanup.
      const pendingKey = this.#key(name, 'pending');
      // A few chunks in flight keep the connection busy; ioredis copies each command into
      // one buffer, so memory stays within WINDOW chunks whatever the size of the state.
      const inFlight: Promise<unknown>[] = [];
      let i = 0;
      for (const chunk of chunksOf(parts, chunkSize)) {
        const sent = client
          .multi()
          .hset(pendingKey, id, chunks)
          .set(this.#chunkKey(name, id, i++), chunk)
          .exec()
          .then(failedIn);
        sent.catch(() => {}); // awaited below, in order; this only marks it handled meanwhile
        inFlight.push(sent);
        if (inFlight.length >= WINDOW) await inFlight.shift();
      }
      await Promise.all(inFlight);
      const savedAt = new Date().toISOString();
      const entry: ManifestEntry = { id, size, savedAt, token, chunks };
      const keys = ['manifest', 'lease', 'pending', 'fence'].map((s) => this.#key(name, s));
      const args = [lease?.record ?? '', token, JSON.stringify(entry), keep, leaseTtl];
      const [status, ...rest] = (await this.#script(client, COMMIT, keys, ...args)) as string[];
      if (status === 'taken') {
        // The new holder may have cleaned up while we uploaded; our chunks are ours to delete.
        await this.#discard(client, name, id, chunks, undefined).catch(() => {});
        throw this.#takenOver(name, rest[0] ?? '', token);
      }
      return { savedAt, dropped: rest };
    });
    // The commit stands even if this deletion fails: the dropped ids stay pending for cleanup.
    await this.#run('delete old generations of', name, (client) =>
      this.#purge(client, name, dropped),
    ).catch(() => {});
    return { id, size, savedAt, token };
  }

  /**
   * Journals of `once()` steps: `<prefix>:<name>:journal:<epoch>` strings grown by APPEND,
   * listed in the `journals` sorted set. An append is acknowledged once the server has it
   * (durable as far as its own persistence setting makes it). Fenced as `write`.
   */
  readonly journal: AsyncJournalStore = {
    read: (name) =>
      this.#run('read the journals of', name, async (client) => {
        const epochs = await client.zrange(this.#key(name, 'journals'), '0', '-1');
        const out: RemoteJournal[] = [];
        for (const epoch of epochs.map(Number).sort((a, b) => a - b)) {
          const key = this.#key(name, `journal:${epoch}`);
          const bytes = await client.getBuffer(key);
          if (bytes !== null) out.push({ epoch, location: `${this.#server}/${key}`, bytes });
        }
        return out;
      }),
    append: (name, epoch, magic, bytes) =>
      this.#run('append to the journal of', name, async (client) => {
        const lease = this.#leases.get(name);
        const keys = [`journal:${epoch}`, 'journals', 'lease', 'fence', 'journaled'].map((k) =>
          this.#key(name, k),
        );
        const args = [...fence(lease), epoch, Buffer.from(magic), Buffer.from(bytes), Date.now()];
        this.#checkFence(name, lease, await this.#script(client, JOURNAL_APPEND, keys, ...args));
      }),
    drop: (name, epoch) =>
      this.#run('drop old journals of', name, async (client) => {
        const lease = this.#leases.get(name);
        const keys = ['journals', 'lease', 'fence', 'journaled'].map((k) => this.#key(name, k));
        const args = [...fence(lease), epoch, this.#key(name, 'journal:')];
        this.#checkFence(name, lease, await this.#script(client, JOURNAL_DROP, keys, ...args));
      }),
    lastModified: (name) =>
      this.#run('read the journal time of', name, async (client) => {
        if ((await client.zcard(this.#key(name, 'journals'))) === 0) return undefined;
        const at = await client.get(this.#key(name, 'journaled'));
        return at === null ? undefined : Number(at);
      }),
  };

  /** Fenced as `write`: refused with `CheckpointLockedError` to a holder that was taken over. */
  async remove(name: string): Promise<void> {
    const lease = this.#leases.get(name);
    await this.#run('remove', name, async (client) => {
      const keys = ['manifest', 'pending', 'lease', 'fence'].map((s) => this.#key(name, s));
      this.#checkFence(name, lease, await this.#script(client, UNREFERENCE, keys, ...fence(lease)));
      await this.#purge(client, name, undefined, lease);
    });
    await this.journal.drop(name, Number.MAX_SAFE_INTEGER);
  }

  /** Fenced as `write`: refused with `CheckpointLockedError` to a holder that was taken over. */
  async moveAside(name: string, tag: string): Promise<string[]> {
    const target = `${name}.${tag}`;
    const lease = this.#leases.get(name);
    return this.#run(`move aside (as ${target})`, name, async (client) => {
      // Renamed, not copied: O(1) per key, and the moved data is then owned by the new name
      // alone, so later writes, trims and cleanups of `name` can never delete it.
      for (let attempt = 0; attempt < 5; attempt++) {
        const raw = await client.get(this.#key(name, 'manifest'));
        if (raw === null) return [];
        const generations = (JSON.parse(raw) as Manifest).generations;
        const keys = [
          this.#key(name, 'manifest'),
          this.#key(target, 'manifest'),
          this.#key(name, 'lease'),
          this.#key(name, 'fence'),
        ];
        for (const g of generations) {
          for (let i = 0; i < g.chunks; i++) {
            keys.push(this.#chunkKey(name, g.id, i), this.#chunkKey(target, g.id, i));
          }
        }
        // Journals of steps go with the state they belong to.
        for (const k of ['journals', 'journaled'])
          keys.push(this.#key(name, k), this.#key(target, k));
        for (const epoch of await client.zrange(this.#key(name, 'journals'), '0', '-1')) {
          keys.push(this.#key(name, `journal:${epoch}`), this.#key(target, `journal:${epoch}`));
        }
        const moved = await this.#script(client, MOVE, keys, raw, ...fence(lease));
        const status = this.#checkFence(name, lease, moved);
        if (status === 'exists') throw new StoreError(`${this.locate(target)} already exists`);
        if (status === 'ok') return generations.map((g) => `${this.locate(target)}:gen:${g.id}`);
      }
      throw new StoreError(`${this.locate(name)} kept changing while being moved aside`);
    });
  }

  /**
   * Holders are counted per instance: a second `lock` of a name this instance holds
   * succeeds and needs as many `unlock`s, like the file store letting one process open a
   * name again. Through `redisStore()`, stores with equal options share one instance in
   * the background thread, so they too share (and count) one lease rather than exclude
   * each other; only other processes or other options (another instance) are locked out.
   */
  async lock(name: string, owner: LockOwner, replace?: number): Promise<void> {
    const held = this.#leases.get(name);
    if (held !== undefined) {
      held.count++;
      this.#renewEvery(name, held);
      return;
    }
    const { leaseTtl } = this.#settings;
    const { pid, host, since } = owner;
    const record: LeaseOwner & { token?: number } = { id: this.#id, pid, host, since };
    // Who the holder is, precisely enough to be judged on its own machine (#14.3).
    for (const key of ['boot', 'pidns', 'start'] as const) {
      if (owner[key] !== undefined) record[key] = owner[key];
    }
    const [token, current] = await this.#run('lock', name, async (client) => {
      const keys = [this.#key(name, 'lease'), this.#key(name, 'fence')];
      const args = [JSON.stringify(record), leaseTtl, replace ?? ''];
      return (await this.#script(client, ACQUIRE, keys, ...args)) as [number, string];
    });
    if (token === 0) {
      // Taken meanwhile by a concurrent lock() of this same store: one more holder of ours.
      const mine = this.#leases.get(name);
      if (mine?.record === current) {
        mine.count++;
        return;
      }
      const holder = parseLease(current);
      throw new CheckpointLockedError(
        `Checkpoint "${name}" is locked by pid ${holder.pid} on host ${holder.host} since ${holder.since} (${this.locate(name)})`,
        holder,
      );
    }
    const lease: Lease = { record: current, token, count: 1, timer: undefined };
    this.#leases.set(name, lease);
    this.#renewEvery(name, lease);
  }

  /** The lease of `name` with its time left, on the server's clock (one round trip). */
  async lease(name: string): Promise<LeaseState | undefined> {
    return this.#run('read the lease of', name, async (client) => {
      const key = this.#key(name, 'lease');
      const replies = await client.multi().get(key).pttl(key).time().exec();
      failedIn(replies);
      const [[, record], [, ttl], [, time]] = replies as [unknown, unknown][] as [
        [null, string | null],
        [null, number],
        [null, [string, string]],
      ];
      if (record === null || ttl < 0) return undefined;
      const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
      return { holder: parseLease(record), expiresIn: ttl, expiresAt: now + ttl };
    });
  }

  async unlock(name: string): Promise<void> {
    const lease = this.#leases.get(name);
    if (lease === undefined || --lease.count > 0) return;
    clearInterval(lease.timer);
    this.#leases.delete(name);
    await this.#run('unlock', name, (client) =>
      this.#script(client, RELEASE, [this.#key(name, 'lease')], lease.record),
    );
  }

  /** Fenced as `write`: a holder that was taken over must not delete the new holder's upload. */
  async cleanup(name: string): Promise<void> {
    const lease = this.#leases.get(name);
    await this.#run('clean up', name, async (client) => {
      const manifest = await this.#manifest(client, name);
      const referenced = new Set(manifest.generations.map((g) => g.id));
      await this.#purge(client, name, undefined, lease, referenced);
    });
  }

  /**
   * Stops lease renewal and disconnects. Leases are not released (a closed store behaves as
   * a holder that died: its leases expire); a store used again connects anew and its writes
   * stay fenced by the leases it held.
   */
  async close(): Promise<void> {
    for (const lease of this.#leases.values()) {
      clearInterval(lease.timer);
      lease.timer = undefined;
    }
    const client = this.#client;
    this.#client = undefined;
    this.#redis = undefined;
    if (client === undefined) return;
    const redis = await client.catch(() => undefined);
    if (redis === undefined) return;
    // Referenced while quitting: an idle store's socket is unref'd, and a main thread whose
    // only pending work is this quit would otherwise end with an unsettled top-level await.
    redis.stream?.ref();
    await redis.quit().catch(() => redis.disconnect());
  }

  #key(name: string, suffix: string): string {
    return `${this.#settings.prefix}:${name}:${suffix}`;
  }

  #chunkKey(name: string, id: string, index: number): string {
    return this.#key(name, `gen:${id}:${index}`);
  }

  async #manifest(client: Redis, name: string): Promise<Manifest> {
    const raw = await client.get(this.#key(name, 'manifest'));
    return raw === null ? { token: 0, generations: [] } : (JSON.parse(raw) as Manifest);
  }

  /**
   * Deletes the data of pending generations (`ids`, or all except `referenced`) and unlists
   * them; each deletion fenced by `lease` when given.
   */
  async #purge(
    client: Redis,
    name: string,
    ids: string[] | undefined,
    lease?: Lease,
    referenced = new Set<string>(),
  ): Promise<void> {
    const pending = await client.hgetall(this.#key(name, 'pending'));
    for (const id of ids ?? Object.keys(pending)) {
      if (pending[id] === undefined) continue;
      await this.#discard(client, name, id, referenced.has(id) ? 0 : Number(pending[id]), lease);
    }
  }

  /**
   * Deletes `chunks` chunks of generation `id` and its pending entry, in one atomic step;
   * refused with `CheckpointLockedError` if `lease` (when given) was taken over.
   */
  async #discard(
    client: Redis,
    name: string,
    id: string,
    chunks: number,
    lease: Lease | undefined,
  ): Promise<void> {
    const keys = ['pending', 'lease', 'fence'].map((s) => this.#key(name, s));
    for (let i = 0; i < chunks; i++) keys.push(this.#chunkKey(name, id, i));
    this.#checkFence(name, lease, await this.#script(client, DISCARD, keys, id, ...fence(lease)));
  }

  /** The status of a fenced script's reply; throws `CheckpointLockedError` if it was refused. */
  #checkFence(name: string, lease: Lease | undefined, reply: unknown): string {
    const [status, record] = reply as [string, string?];
    if (status === 'taken') throw this.#takenOver(name, record ?? '', lease?.token ?? 0);
    return status;
  }

  #renewEvery(name: string, lease: Lease): void {
    if (lease.timer !== undefined) return;
    const { leaseTtl } = this.#settings;
    // A failed renewal is retried at the next tick; if the lease is lost meanwhile, the
    // fenced commit refuses our next write, so nothing here needs to act on it.
    lease.timer = setInterval(
      () => {
        this.#connected()
          .then((client) =>
            this.#script(client, RENEW, [this.#key(name, 'lease')], lease.record, leaseTtl),
          )
          .catch(() => {});
      },
      Math.floor(leaseTtl / 3),
    );
    lease.timer.unref();
  }

  #takenOver(name: string, record: string, token: number): CheckpointLockedError {
    const holder =
      record === '' ? { ...UNKNOWN_OWNER, since: '', token: Number.NaN } : parseLease(record);
    const by =
      record === ''
        ? 'a writer with a newer fencing token'
        : `pid ${holder.pid} on host ${holder.host} (token ${holder.token})`;
    return new CheckpointLockedError(
      `Checkpoint "${name}" was taken over by ${by} while this writer (token ${token}) held it; the save was not committed (${this.locate(name)})`,
      holder,
    );
  }

  async #script(client: Redis, lua: string, keys: string[], ...args: (string | number | Buffer)[]) {
    return client.eval(lua, keys.length, ...keys, ...args);
  }

  /** Runs `fn` with a connected client; failures become StoreError naming `what` and where. */
  async #run<T>(what: string, name: string, fn: (client: Redis) => Promise<T>): Promise<T> {
    this.#busy++;
    this.#holdOpen();
    try {
      return await fn(await this.#connected());
    } catch (err) {
      if (err instanceof StoreError || err instanceof CheckpointLockedError) throw err;
      throw new StoreError(
        `Redis store could not ${what} ${this.locate(name)}: ${(err as Error)?.message ?? err}`,
        { cause: err },
      );
    } finally {
      this.#busy--;
      this.#holdOpen();
    }
  }

  /**
   * The socket keeps the process (or thread) alive only while an operation is under way:
   * an idle store, like its unref'd timers, never holds a process open.
   */
  #holdOpen(): void {
    const stream = this.#redis?.stream;
    if (this.#busy > 0) stream?.ref();
    else stream?.unref();
  }

  /** The client, connected: created on first use, waited for (briefly) while it reconnects. */
  async #connected(): Promise<Redis> {
    this.#client ??= this.#createClient();
    const client = await this.#client;
    if (client.status === 'ready') return client;
    if (client.status === 'wait' || client.status === 'end') {
      await client.connect().catch((err: unknown) => {
        throw this.#lastError ?? err;
      });
      return client;
    }
    const timeout = AbortSignal.timeout(RECONNECT_WAIT_MS);
    try {
      await once(client, 'ready', { signal: timeout });
    } catch {
      throw this.#lastError ?? new Error(`not connected (${client.status})`);
    }
    return client;
  }

  async #createClient(): Promise<Redis> {
    let Redis: typeof import('ioredis').Redis;
    try {
      ({ Redis } = await import('ioredis'));
    } catch (err) {
      this.#client = undefined;
      throw new StoreError(
        'resumable-state/redis needs the optional package ioredis: npm install ioredis',
        { cause: err },
      );
    }
    // Replies must keep the RESP2-compatible shapes this store reads, whatever the user set.
    const { replyMapping: _replyMapping, ...user } = this.#settings.redis;
    const options = { ...CLIENT_DEFAULTS, ...user, lazyConnect: true };
    const client =
      this.#settings.url === undefined
        ? new Redis(options)
        : new Redis(this.#settings.url, options);
    // Without a listener ioredis prints every connection error; the last one is kept as the
    // cause of the StoreError a command fails with while disconnected.
    client.on('error', (err: unknown) => {
      this.#lastError = err;
    });
    client.on('ready', () => {
      this.#lastError = undefined;
    });
    client.on('connect', () => this.#holdOpen());
    this.#redis = client;
    return client;
  }
}

/** The fence arguments of the scripts: our lease record ('' without a lease) and its token. */
function fence(lease: Lease | undefined): [string, number] {
  return [lease?.record ?? '', lease?.token ?? 0];
}

/** Throws the first error of a MULTI's replies, or if the transaction was aborted. */
function failedIn(replies: [Error | null, unknown][] | null): void {
  if (replies === null) throw new Error('MULTI transaction aborted');
  for (const [err] of replies) if (err) throw err;
}

function parseLease(record: string): LeaseOwner & { token: number } {
  try {
    return JSON.parse(record) as LeaseOwner & { token: number };
  } catch {
    return { id: '', ...UNKNOWN_OWNER, since: '', token: Number.NaN };
  }
}

/**
 * Cuts the concatenation of `parts` into chunks of `size` bytes (one empty chunk when there
 * are no bytes). A chunk inside one part is a view of it; only chunks that straddle parts
 * are copied, into a buffer of their own.
 */
function* chunksOf(parts: readonly Uint8Array[], size: number): Generator<Buffer> {
  let carry: Buffer | undefined;
  let filled = 0;
  let any = false;
  for (const part of parts) {
    for (let at = 0; at < part.byteLength; ) {
      if (filled === 0 && part.byteLength - at >= size) {
        yield Buffer.from(part.buffer, part.byteOffset + at, size);
        any = true;
        at += size;
        continue;
      }
      carry ??= Buffer.allocUnsafe(size);
      const n = Math.min(size - filled, part.byteLength - at);
      carry.set(part.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === size) {
        yield carry;
        any = true;
        carry = undefined;
        filled = 0;
      }
    }
  }
  if (filled > 0) yield carry!.subarray(0, filled);
  else if (!any) yield Buffer.alloc(0);
}
