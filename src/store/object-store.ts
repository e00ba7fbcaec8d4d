/**
 * The shared-store protocol over any bucket with conditional writes (#16.6): the S3 store
 * is this over ./s3-bucket.ts, and a GCS or Azure store would be this over an adapter of
 * ./object-bucket.ts. Layout of checkpoint `name` in its folder (`folder(name)`):
 *
 *   <folder>/gen-<time>-<random>.ckpt   one immutable object per generation
 *   <folder>/manifest.json              { token, generations } newest first
 *   <folder>/lease.json                 { id, pid, host, since, token, expiresAt }
 *   <folder>/journal-<epoch>-<instance>-<seq>.rec   one immutable object per append
 *
 * A write uploads a new generation object, then replaces the manifest with a conditional PUT
 * (If-Match the tag it read, If-None-Match '*' when there was none), then deletes what fell
 * out of `keep`. Readers only follow the manifest, so a crash at any point leaves the previous
 * manifest current; what a crash leaves (uploads, objects never committed) goes at cleanup().
 *
 * Fencing: a lease carries a token one higher than any before it, and taking a lease writes
 * that token into the manifest at once. A holder whose lease was taken over then fails its
 * next commit, because the manifest's tag changed or its token is higher than its own.
 *
 * Journals of `once()` steps: objects have no append, so each append PUTs a new object. Its
 * key sorts by epoch (zero-padded), then instance id, then a per-instance sequence number
 * (zero-padded): only the lease holder appends to an epoch, so key order is append order.
 * Every object holds the journal magic followed by its batch, and says how long the magic
 * is in its metadata; read() keeps the magic of the first object of an epoch only. So an
 * epoch whose first append was lost (a failed PUT while a blocking flush went on) still
 * reads as a whole journal.
 *
 * This file is over 400 lines because the protocol is one piece: commit, fence, lease,
 * journal and sweep read and write the same manifest and lease under the same rules.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { CheckpointError, CheckpointLockedError, StoreError, UNKNOWN_OWNER } from '../errors.js';
import { describe, expectKeep } from '../options.js';
import type { ObjectBucket } from './object-bucket.js';
import type {
  AsyncCheckpointStore,
  AsyncJournalStore,
  LeaseOwner,
  LeaseState,
  RemoteGeneration,
  RemoteJournal,
} from './remote.js';
import type { LockOwner } from './store.js';

/** Tries of a step that lost a race (a conditional write refused) before giving up. */
const MAX_RACES = 5;
const GENERATION = /^gen-[0-9a-z]+-[0-9a-f]+\.ckpt$/;
/** A journal object: epoch, writing instance, sequence number of its appends to the epoch. */
const JOURNAL = /^journal-(\d{16})-[0-9a-f-]+-\d{8}\.rec$/;
/** Objects read at once by a journal read. */
const READ_CONCURRENCY = 8;

/** The keys of checkpoint files in folder `folder` (see the top of this file), for readers too. */
export const objectKeys = {
  generation: (folder: string, id: string) => `${folder}/${id}.ckpt`,
  manifest: (folder: string) => `${folder}/manifest.json`,
  lease: (folder: string) => `${folder}/lease.json`,
  /** The folder of the manifest at `key` below `start`, or undefined for any other key. */
  folderOfManifest(key: string, start: string): string | undefined {
    const rest = key.startsWith(start) ? key.slice(start.length) : '';
    return /^[^/]+\/manifest\.json$/.test(rest)
      ? rest.slice(0, -'/manifest.json'.length)
      : undefined;
  },
};

/** Where a store keeps its checkpoints, and for how long a lease holds. */
export interface ObjectStoreOptions {
  /** The key folder of checkpoint `name` (prefix included, no trailing `/`). */
  folder(name: string): string;
  /** Lease expiry, ms; renewed every third of it. */
  leaseTtl: number;
}

interface Manifest {
  /** Highest fencing token granted for this checkpoint. */
  token: number;
  generations: RemoteGeneration[];
}

interface Lease extends LeaseOwner {
  token: number;
  /** ISO time after which another holder may take the lease over. */
  expiresAt: string;
}

/** A lease this instance holds. */
interface Held {
  /** lock() calls not yet matched by unlock(). */
  count: number;
  lease: Lease;
  etag: string;
  timer?: NodeJS.Timeout;
  renewing?: Promise<void>;
}

/** A JSON object as read, with the tag a conditional write must match. */
interface Versioned<T> {
  value: T;
  etag: string;
}

/** An AsyncCheckpointStore keeping its checkpoints in `bucket`. */
export function objectStore(
  bucket: ObjectBucket,
  options: ObjectStoreOptions,
): AsyncCheckpointStore {
  return new ObjectStore(bucket, options);
}

class ObjectStore implements AsyncCheckpointStore {
  readonly #bucket: ObjectBucket;
  readonly #options: ObjectStoreOptions;
  /** Names this instance in leases, so it knows its own after a failed release. */
  readonly #id = randomUUID();
  readonly #held = new Map<string, Held>();
  /** Keys of generations being written, which cleanup() must not take for leftovers. */
  readonly #pending = new Set<string>();
  /** Next sequence number of this instance's appends, by journal (`name` and epoch). */
  readonly #appends = new Map<string, Map<number, number>>();

  constructor(bucket: ObjectBucket, options: ObjectStoreOptions) {
    this.#bucket = bucket;
    this.#options = options;
  }

  locate(name: string): string {
    return this.#bucket.url(this.#folder(name));
  }

  generations(name: string): Promise<RemoteGeneration[]> {
    return this.#run(
      'read',
      name,
      async () => (await this.#manifest(name))?.value.generations ?? [],
    );
  }

  async download(name: string, generation: RemoteGeneration, path: string): Promise<void> {
    const key = this.#generationKey(name, generation.id);
    try {
      await this.#run('download', name, async () => {
        const written = await this.#bucket.download(key, path);
        if (written !== generation.size) {
          throw new Refusal(
            `generation ${generation.id} has ${written} bytes, expected ${generation.size}`,
          );
        }
      });
    } catch (err) {
      await rm(path, { force: true });
      throw err;
    }
  }

  async write(name: string, parts: readonly Uint8Array[], keep: number): Promise<RemoteGeneration> {
    expectKeep(keep);
    const id = `gen-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    const key = this.#generationKey(name, id);
    const size = parts.reduce((sum, part) => sum + part.byteLength, 0);
    this.#pending.add(key);
    try {
      await this.#run('upload', name, () => this.#bucket.upload(key, parts, size));
      return await this.#run('commit', name, () => this.#commit(name, id, size, keep));
    } catch (err) {
      // Refused for certain: the object is ours alone to drop. After a network failure the
      // manifest may have been written all the same, so the object stays for cleanup() to judge.
      if (err instanceof CheckpointLockedError) await this.#deleteQuietly([key]);
      throw err;
    } finally {
      this.#pending.delete(key);
    }
  }

  async #commit(name: string, id: string, size: number, keep: number): Promise<RemoteGeneration> {
    const held = this.#held.get(name);
    for (let race = 0; race < MAX_RACES; race++) {
      const current = await this.#manifest(name);
      const manifest = current?.value ?? { token: 0, generations: [] };
      if (held !== undefined) await this.#checkFence(name, held, manifest.token);
      const generation: RemoteGeneration = {
        id,
        size,
        savedAt: new Date().toISOString(),
        token: held?.lease.token ?? 0,
      };
      const next: Manifest = {
        token: Math.max(manifest.token, generation.token),
        generations: [generation, ...manifest.generations.slice(0, keep - 1)],
      };
      // Refused: the manifest changed since we read it (a commit, or a takeover raising the
      // token). Read it again: the fence check then tells which.
      if ((await this.#putJson(this.#manifestKey(name), next, current?.etag)) === undefined) {
        await backOff(race);
        continue;
      }
      const dropped = manifest.generations.slice(keep - 1);
      await this.#deleteQuietly(dropped.map((g) => this.#generationKey(name, g.id)));
      return generation;
    }
    throw new Refusal(`its manifest changed under every one of ${MAX_RACES} tries`);
  }

  /** Throws CheckpointLockedError when another holder took our lease of `name` over. */
  async #checkFence(
    name: string,
    held: Held,
    manifestToken: number,
    refused = 'this save was not committed',
  ): Promise<void> {
    const lease = await this.#getJson<Lease>(this.#leaseKey(name));
    if (manifestToken <= held.lease.token && lease?.value.id === this.#id) return;
    const by = lease?.value ?? UNKNOWN_OWNER;
    throw new CheckpointLockedError(
      `Checkpoint "${name}" was taken over by pid ${by.pid} on host ${by.host} (lease token ${Math.max(manifestToken, lease?.value.token ?? 0)}, ours ${held.lease.token}); ${refused}`,
      by,
    );
  }

  /**
   * Journals of `once()` steps, one immutable object per append (see the top of this file).
   * Appends are not fenced (a stale holder's records are true results); drop is, as `write`.
   */
  readonly journal: AsyncJournalStore = {
    read: (name) => this.#run('read the journals of', name, () => this.#readJournals(name)),
    append: (name, epoch, magic, bytes) => {
      // Numbered now, in call order, so appends in flight together keep their order.
      let epochs = this.#appends.get(name);
      if (epochs === undefined) this.#appends.set(name, (epochs = new Map()));
      const seq = epochs.get(epoch) ?? 0;
      epochs.set(epoch, seq + 1);
      return this.#run('append to the journal of', name, async () => {
        const key = `${this.#journalPrefix(name, epoch)}-${this.#id}-${pad(seq, 8)}.rec`;
        await this.#bucket.put(key, Buffer.concat([magic, bytes]), {
          magic: String(magic.byteLength),
        });
      });
    },
    drop: (name, epoch) =>
      this.#run('drop old journals of', name, async () => {
        const held = this.#held.get(name);
        if (held !== undefined) {
          const manifest = await this.#manifest(name);
          const token = manifest?.value.token ?? 0;
          await this.#checkFence(name, held, token, 'its old journals were not dropped');
        }
        const dropped = (await this.#journalObjects(name)).filter((o) => o.epoch < epoch);
        await this.#deleteAll(dropped.map((o) => o.key));
        const epochs = this.#appends.get(name);
        for (const at of epochs?.keys() ?? []) if (at < epoch) epochs!.delete(at);
      }),
    lastModified: (name) =>
      this.#run('read the journal time of', name, async () => {
        const objects = await this.#journalObjects(name);
        if (objects.length === 0) return undefined;
        return Math.max(...objects.map((o) => o.modified));
      }),
  };

  async #readJournals(name: string): Promise<RemoteJournal[]> {
    const objects = await this.#journalObjects(name);
    const bodies = await mapLimit(objects, READ_CONCURRENCY, async ({ key }) => {
      const object = await this.#bucket.get(key);
      if (object === undefined) throw new Refusal(`${this.#bucket.url(key)} is gone`);
      const magic = Number(object.metadata.magic ?? 0);
      if (!Number.isInteger(magic) || magic < 0 || magic > object.body.byteLength) {
        throw new Refusal(
          `${this.#bucket.url(key)} is not a journal object (magic length ${magic})`,
        );
      }
      return { body: object.body, magic };
    });
    const journals: { epoch: number; parts: Uint8Array[] }[] = [];
    objects.forEach(({ epoch }, i) => {
      const { body, magic } = bodies[i]!;
      const last = journals.at(-1);
      if (last?.epoch === epoch) last.parts.push(body.subarray(magic));
      else journals.push({ epoch, parts: [body] });
    });
    return journals.map(({ epoch, parts }) => ({
      epoch,
      location: this.#bucket.url(this.#journalPrefix(name, epoch)),
      bytes: Buffer.concat(parts),
    }));
  }

  /** The journal objects of `name`, in key order: by epoch, then in order of appending. */
  async #journalObjects(name: string): Promise<{ key: string; epoch: number; modified: number }[]> {
    const folder = `${this.#folder(name)}/`;
    const found: { key: string; epoch: number; modified: number }[] = [];
    for (const { key, modified } of await this.#bucket.list(`${folder}journal-`)) {
      const match = JOURNAL.exec(key.slice(folder.length));
      if (match !== null) found.push({ key, epoch: Number(match[1]), modified });
    }
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** `<folder>/journal-<epoch>`: the start of the keys of journal `epoch`, its location. */
  #journalPrefix(name: string, epoch: number): string {
    if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch >= 1e16) {
      throw new RangeError(`Expected a journal epoch from 0 to 16 digits, got ${describe(epoch)}`);
    }
    return `${this.#folder(name)}/journal-${pad(epoch, 16)}`;
  }

  async #deleteAll(keys: string[]): Promise<void> {
    await mapLimit(keys, READ_CONCURRENCY, (key) => this.#bucket.delete(key));
  }

  remove(name: string): Promise<void> {
    return this.#run('remove', name, async () => {
      await this.#bucket.delete(this.#manifestKey(name));
      await this.#sweep(name, new Set());
      await this.#deleteAll((await this.#journalObjects(name)).map((o) => o.key));
      this.#appends.delete(name);
    });
  }

  /**
   * Copies every generation and journal object (inside the service, no bytes through this
   * process) under `name.tag` with its own manifest, then empties the manifest of `name`
   * (keeping its token, which fences old holders) and deletes the originals. Copies rather
   * than references, so that later writes, `keep` and remove() of `name` can never delete
   * what was moved aside. Returns the moved generations, then the moved journals.
   */
  moveAside(name: string, tag: string): Promise<string[]> {
    return this.#run('move aside', name, async () => {
      const current = await this.#manifest(name);
      const generations = current?.value.generations ?? [];
      const journals = await this.#journalObjects(name);
      if (generations.length === 0 && journals.length === 0) return [];
      const aside = `${name}.${tag}`;
      const moves = [
        ...generations.map((g) => [
          this.#generationKey(name, g.id),
          this.#generationKey(aside, g.id),
        ]),
        ...journals.map(({ key }) => [
          key,
          `${this.#folder(aside)}${key.slice(this.#folder(name).length)}`,
        ]),
      ];
      await mapLimit(moves, READ_CONCURRENCY, ([from, to]) => this.#bucket.copy(from!, to!));
      const manifest = current?.value ?? { token: 0, generations: [] };
      if ((await this.#putJson(this.#manifestKey(aside), manifest)) === undefined) {
        throw new Refusal(`${this.locate(aside)} already exists`);
      }
      const emptied = { token: manifest.token, generations: [] };
      if ((await this.#putJson(this.#manifestKey(name), emptied, current?.etag)) === undefined) {
        // A commit came in between: keep everything where it is, the copy goes.
        await this.#deleteQuietly([this.#manifestKey(aside), ...moves.map(([, to]) => to!)]);
        throw new Refusal('its manifest changed while it was being moved aside; nothing moved');
      }
      await this.#deleteQuietly(moves.map(([from]) => from!));
      const epochs = [...new Set(journals.map((j) => j.epoch))];
      return [
        ...generations.map((g) => this.#bucket.url(this.#generationKey(aside, g.id))),
        ...epochs.map((epoch) => this.#bucket.url(this.#journalPrefix(aside, epoch))),
      ];
    });
  }

  lock(name: string, owner: LockOwner, replace?: number): Promise<void> {
    const held = this.#held.get(name);
    if (held !== undefined) {
      held.count++;
      return Promise.resolve();
    }
    return this.#run('lock', name, async () => {
      for (let race = 0; race < MAX_RACES; race++) {
        const current = await this.#getJson<Lease>(this.#leaseKey(name));
        // A live lease of another holder stands, unless the caller found its holder dead
        // (#14.3); the conditional PUT below fails if another process took it meanwhile.
        if (
          current !== undefined &&
          current.value.id !== this.#id &&
          !isExpired(current.value) &&
          current.value.token !== replace
        ) {
          const { pid, host, since, expiresAt } = current.value;
          throw new CheckpointLockedError(
            `Checkpoint "${name}" is locked by pid ${pid} on host ${host} since ${since} (lease ${this.#bucket.url(this.#leaseKey(name))}, expires ${expiresAt})`,
            current.value,
          );
        }
        const manifest = await this.#manifest(name);
        const token = Math.max(current?.value.token ?? 0, manifest?.value.token ?? 0) + 1;
        const lease: Lease = { id: this.#id, ...owner, token, expiresAt: this.#expiry() };
        const etag = await this.#putJson(this.#leaseKey(name), lease, current?.etag);
        if (etag === undefined) {
          await backOff(race); // another process got there first: look again
          continue;
        }
        const entry: Held = { count: 1, lease, etag };
        this.#held.set(name, entry);
        try {
          await this.#raiseToken(name, token);
        } catch (err) {
          this.#held.delete(name);
          await this.#bucket.delete(this.#leaseKey(name), etag).catch(() => {}); // else it expires
          throw err;
        }
        this.#scheduleRenewal(name, entry);
        return;
      }
      throw new Refusal(`its lease changed under every one of ${MAX_RACES} tries`);
    });
  }

  /** The lease of `name`; its expiry is on the clock of the holder that wrote it. */
  lease(name: string): Promise<LeaseState | undefined> {
    return this.#run('read the lease of', name, async () => {
      const current = await this.#getJson<Lease>(this.#leaseKey(name));
      if (current === undefined) return undefined;
      const { expiresAt, ...holder } = current.value;
      const at = Date.parse(expiresAt);
      return { holder, expiresIn: at - Date.now(), expiresAt: at };
    });
  }

  /** Writes `token` into the manifest, so a commit by the holder we replaced is refused. */
  async #raiseToken(name: string, token: number): Promise<void> {
    for (let race = 0; race < MAX_RACES; race++) {
      const current = await this.#manifest(name);
      const next = {
        token: Math.max(token, current?.value.token ?? 0),
        generations: current?.value.generations ?? [],
      };
      if ((await this.#putJson(this.#manifestKey(name), next, current?.etag)) !== undefined) return;
      await backOff(race);
    }
    throw new Refusal(`its manifest changed under every one of ${MAX_RACES} tries`);
  }

  #scheduleRenewal(name: string, held: Held): void {
    held.timer = setTimeout(() => {
      held.renewing = this.#renew(name, held);
    }, this.#options.leaseTtl / 3);
    held.timer.unref();
  }

  async #renew(name: string, held: Held): Promise<void> {
    const lease = { ...held.lease, expiresAt: this.#expiry() };
    try {
      const etag = await this.#putJson(this.#leaseKey(name), lease, held.etag);
      // Refused: taken over or deleted. Stop renewing; the next commit is refused by the fence.
      if (etag === undefined) return;
      held.etag = etag;
      held.lease = lease;
    } catch {
      // Unreachable for now: try again at the next tick. Should the lease expire meanwhile
      // and be taken over, the fence refuses our next commit.
    }
    if (this.#held.get(name) === held) this.#scheduleRenewal(name, held);
  }

  unlock(name: string): Promise<void> {
    const held = this.#held.get(name);
    if (held === undefined || --held.count > 0) return Promise.resolve();
    this.#held.delete(name);
    clearTimeout(held.timer);
    return this.#run('unlock', name, async () => {
      await held.renewing;
      // Only if it is still the one we wrote: a lease taken over belongs to its new holder.
      await this.#bucket.delete(this.#leaseKey(name), held.etag);
    });
  }

  cleanup(name: string): Promise<void> {
    return this.#run('clean up', name, async () => {
      const manifest = await this.#manifest(name);
      const committed = new Set(manifest?.value.generations.map((g) => `${g.id}.ckpt`));
      await this.#sweep(name, committed);
    });
  }

  /** Aborts unfinished uploads of `name` and deletes its generation objects not in `keep`. */
  async #sweep(name: string, keep: Set<string>): Promise<void> {
    const prefix = `${this.#folder(name)}/`;
    const isLeftover = (key: string): boolean =>
      GENERATION.test(key.slice(prefix.length)) &&
      !keep.has(key.slice(prefix.length)) &&
      !this.#pending.has(key);
    await this.#bucket.abortUploads(prefix, isLeftover);
    // Shallow: the objects of a name nested below this one (`name/x/…`) are not its own.
    const leftovers = (await this.#bucket.list(prefix, true)).map((o) => o.key).filter(isLeftover);
    await Promise.all(leftovers.map((key) => this.#bucket.delete(key)));
  }

  async close(): Promise<void> {
    for (const held of this.#held.values()) clearTimeout(held.timer);
    this.#held.clear();
    await this.#bucket.close();
  }

  /** Runs one operation; any failure but our own errors becomes a StoreError naming it. */
  async #run<T>(action: string, name: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      if (err instanceof CheckpointError) throw err;
      const reason = err instanceof Error ? err.message || err.name : String(err);
      const message = `Cannot ${action} checkpoint "${name}" at ${this.locate(name)}: ${reason}`;
      throw new StoreError(message, err instanceof Refusal ? {} : { cause: err });
    }
  }

  async #manifest(name: string): Promise<Versioned<Manifest> | undefined> {
    return this.#getJson<Manifest>(this.#manifestKey(name));
  }

  async #getJson<T>(key: string): Promise<Versioned<T> | undefined> {
    const object = await this.#bucket.get(key);
    if (object === undefined) return undefined;
    return { value: JSON.parse(Buffer.from(object.body).toString('utf8')) as T, etag: object.etag };
  }

  /** Writes `value` as JSON only if the object still has `etag` (or, without one, is absent). */
  #putJson(key: string, value: object, etag?: string): Promise<string | undefined> {
    return this.#bucket.putIfMatch(key, JSON.stringify(value), etag, 'application/json');
  }

  async #deleteQuietly(keys: string[]): Promise<void> {
    // Left behind on failure: cleanup() removes objects the manifest does not list.
    await Promise.all(keys.map((key) => this.#bucket.delete(key).catch(() => {})));
  }

  #expiry(): string {
    return new Date(Date.now() + this.#options.leaseTtl).toISOString();
  }

  #folder(name: string): string {
    return this.#options.folder(name);
  }

  #generationKey(name: string, id: string): string {
    return objectKeys.generation(this.#folder(name), id);
  }

  #manifestKey(name: string): string {
    return objectKeys.manifest(this.#folder(name));
  }

  #leaseKey(name: string): string {
    return objectKeys.lease(this.#folder(name));
  }
}

/** Maps `items` with at most `limit` calls of `fn` at once; results in the order of `items`. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function pad(n: number, digits: number): string {
  return String(n).padStart(digits, '0');
}

/** Waits a random while, longer after each lost race, so that racing writers spread out. */
function backOff(race: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * 25 * 2 ** race));
}

/** A refusal of the store itself (no server error behind it): a StoreError without cause. */
class Refusal extends Error {}

function isExpired(lease: Lease): boolean {
  return Date.parse(lease.expiresAt) <= Date.now();
}
