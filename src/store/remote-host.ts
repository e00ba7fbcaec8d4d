/**
 * Background-thread side of a shared store: wraps an AsyncCheckpointStore with the local
 * cache and the download-to-file step, so the main thread only ever reads local files.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verify } from '../codec/layout.js';
import { CheckpointError, StoreError } from '../errors.js';
import { JOURNAL_MAGIC } from '../journal.js';
import { isProcessAlive } from '../lock.js';
import { judgeProcess } from '../process-identity.js';
import { tempFile } from './file-layout.js';
import type {
  AsyncCheckpointStore,
  AsyncJournalStore,
  LeaseState,
  RemoteGeneration,
  RemoteJournal,
} from './remote.js';
import type { LockOwner } from './store.js';
import type { StoreTarget } from './thread-target.js';

/** Options of the host, set by `bridgedStore`. */
export interface RemoteHostOptions {
  /** Folder of the local cache; none: downloads go to a temp file removed after reading. */
  cache?: string;
}

/** A local copy of a generation, ready to be read by the main thread. */
export interface FetchedGeneration {
  path: string;
  /** True when the file is a temporary download the reader deletes when done. */
  temporary: boolean;
}

/**
 * Ours, whichever copy of the library made it: the background thread runs a bundled copy of
 * its own (#12.3), so a store module's CheckpointError is another class than this one.
 */
function isCheckpointError(err: unknown): boolean {
  if (err instanceof CheckpointError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && code.startsWith('CHECKPOINT_');
}

function isLockedError(err: unknown): boolean {
  return isCheckpointError(err) && (err as { code: string }).code === 'CHECKPOINT_LOCKED';
}

/** Builds the host in the background thread: `(await import(module))[name](...args)`. */
export async function hostRemoteStore(
  target: StoreTarget,
  options: RemoteHostOptions,
): Promise<RemoteHost> {
  const module = (await import(target.module)) as Record<
    string,
    (...args: unknown[]) => AsyncCheckpointStore | Promise<AsyncCheckpointStore>
  >;
  const create = module[target.name];
  if (typeof create !== 'function') {
    throw new TypeError(`Store module ${target.module} has no export named ${target.name}`);
  }
  return new RemoteHost(await create(...target.args), options.cache);
}

export class RemoteHost {
  constructor(
    readonly store: AsyncCheckpointStore,
    readonly cache: string | undefined,
  ) {
    void removeDeadDownloads();
  }

  async generations(name: string): Promise<RemoteGeneration[]> {
    // Plain copies: whatever else a store puts in them need not cross threads.
    const list = await this.#wrap('list', name, () => this.store.generations(name));
    return list.map(({ id, size, savedAt, token }) => ({ id, size, savedAt, token }));
  }

  /** Runs `fn`; a failure that is not already ours becomes StoreError, with it as the cause. */
  async #wrap<R>(action: string, name: string, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (err) {
      if (isCheckpointError(err)) throw err;
      const where = this.store.locate(name);
      throw new StoreError(
        `Cannot ${action} checkpoint "${name}" at ${where}: ${(err as Error)?.message}`,
        {
          cause: err,
        },
      );
    }
  }

  /**
   * A local, checksum-verified copy of `generation`: the cached one when it is there and
   * intact (same id, size and CRC), else a fresh download.
   */
  fetch(name: string, generation: RemoteGeneration): Promise<FetchedGeneration> {
    return this.#wrap('read', name, () => this.#fetch(name, generation));
  }

  async #fetch(name: string, generation: RemoteGeneration): Promise<FetchedGeneration> {
    if (this.cache === undefined) {
      const path = join(tmpdir(), `resumable-state-${process.pid}-${random()}.ckpt`);
      await this.#download(name, generation, path);
      return { path, temporary: true };
    }
    const path = this.#cached(name, generation.id);
    if (await isIntact(path, generation.size)) return { path, temporary: false };
    await fs.mkdir(this.cache, { recursive: true, mode: 0o700 });
    const temp = tempFile(path);
    await this.#download(name, generation, temp);
    await fs.rename(temp, path);
    await this.#pruneCache(name, Number.POSITIVE_INFINITY);
    return { path, temporary: false };
  }

  async #download(name: string, generation: RemoteGeneration, path: string): Promise<void> {
    try {
      await this.store.download(name, generation, path);
    } catch (err) {
      await fs.rm(path, { force: true });
      throw err;
    }
  }

  /**
   * Writes remotely and keeps a local copy, so a restart here needs no download. The copy
   * is written while the upload goes on (#17.4): after it, it added 150-300 ms to a 100 MB
   * save on Redis. It becomes the cached generation only once the upload is committed.
   */
  async write(name: string, parts: readonly Uint8Array[], keep: number): Promise<void> {
    const copying = this.cache === undefined ? undefined : this.#copy(name, parts);
    let generation: RemoteGeneration;
    try {
      generation = await this.#wrap('save', name, () => this.store.write(name, parts, keep));
    } catch (err) {
      const temp = await copying;
      if (temp !== undefined) await fs.rm(temp, { force: true }).catch(() => {});
      throw err;
    }
    const temp = await copying;
    if (temp === undefined) return;
    // The cache is an optimisation: failing to fill it must not fail a committed save.
    try {
      await fs.rename(temp, this.#cached(name, generation.id));
      await this.#pruneCache(name, keep);
    } catch {
      await fs.rm(temp, { force: true }).catch(() => {});
    }
  }

  /** `parts` written to a new temp file in the cache: its path, or undefined if that failed. */
  async #copy(name: string, parts: readonly Uint8Array[]): Promise<string | undefined> {
    const temp = tempFile(this.#cached(name, 'new'));
    try {
      await fs.mkdir(this.cache!, { recursive: true, mode: 0o700 });
      const file = await fs.open(temp, 'wx', 0o600);
      try {
        for (const part of parts) await file.write(part);
      } finally {
        await file.close();
      }
      return temp;
    } catch {
      await fs.rm(temp, { force: true }).catch(() => {});
      return undefined;
    }
  }

  async remove(name: string): Promise<void> {
    await this.#wrap('delete', name, () => this.store.remove(name));
    await this.#pruneCache(name, 0);
  }

  moveAside(name: string, tag: string): Promise<string[]> {
    return this.#wrap('move aside', name, () => this.store.moveAside(name, tag));
  }

  /**
   * Takes the lease of `name`, at once from a holder found dead on this machine (#14.3).
   * A holder this machine cannot judge (another host) is returned when `mayWait`, for the
   * caller to wait for its lease; a live one, or any when not `mayWait`, is refused with
   * the store's CheckpointLockedError. Resolves to undefined once the lease is ours.
   */
  lock(name: string, owner: LockOwner, mayWait = false): Promise<LeaseState | undefined> {
    return this.#wrap('lock', name, async () => {
      let replace: number | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          await this.store.lock(name, owner, replace);
          return undefined;
        } catch (err) {
          // By code: the store module's error class is not this bundled copy's (#12.3).
          if (!isLockedError(err) || attempt >= 3) throw err;
          const lease = await this.store.lease?.(name);
          if (lease === undefined) {
            if (this.store.lease === undefined) throw err;
            continue; // let go meanwhile: try again
          }
          const verdict = judgeProcess(lease.holder);
          if (verdict === 'alive' || (verdict === 'unknown' && !mayWait)) throw err;
          if (verdict === 'unknown') {
            const { holder, expiresIn, expiresAt } = lease;
            return { holder: { ...holder }, expiresIn, expiresAt };
          }
          replace = lease.holder.token;
        }
      }
    });
  }

  unlock(name: string): Promise<void> {
    return this.#wrap('unlock', name, () => this.store.unlock(name));
  }

  cleanup(name: string): Promise<void> {
    return this.#wrap('clean up', name, () => this.store.cleanup(name));
  }

  async journalRead(name: string): Promise<RemoteJournal[]> {
    const list = await this.#wrap('read the journals of', name, () => this.#journal().read(name));
    return list.map(({ epoch, location, bytes }) => ({ epoch, location, bytes }));
  }

  journalAppend(name: string, epoch: number, bytes: Uint8Array): Promise<void> {
    return this.#wrap('append to the journal of', name, () =>
      this.#journal().append(name, epoch, JOURNAL_MAGIC, bytes),
    );
  }

  journalDrop(name: string, epoch: number): Promise<void> {
    return this.#wrap('drop old journals of', name, () => this.#journal().drop(name, epoch));
  }

  journalModified(name: string): Promise<number | undefined> {
    return this.#wrap('read the journal time of', name, () => this.#journal().lastModified(name));
  }

  #journal(): AsyncJournalStore {
    if (this.store.journal === undefined) throw new TypeError('This store keeps no journal');
    return this.store.journal;
  }

  #cached(name: string, id: string): string {
    return join(this.cache!, `${encodeURIComponent(name)}.${id}.ckpt`);
  }

  // Keeps the `keep` newest cached copies of `name`, and no temp files of dead processes.
  async #pruneCache(name: string, keep: number): Promise<void> {
    if (this.cache === undefined) return;
    const prefix = `${encodeURIComponent(name)}.`;
    let entries: string[];
    try {
      for (const e of await fs.readdir(this.cache)) {
        const pid = /^.+\.ckpt\.tmp-(\d+)-[0-9a-f]+$/.exec(e)?.[1];
        if (pid !== undefined && !isProcessAlive(Number(pid))) {
          await fs.rm(join(this.cache, e), { force: true });
        }
      }
      // `<name>.<id>.ckpt` only: not the files of a name that starts with `<name>.`.
      entries = (await fs.readdir(this.cache)).filter(
        (e) =>
          e.startsWith(prefix) &&
          e.endsWith('.ckpt') &&
          !e.slice(prefix.length, -'.ckpt'.length).includes('.'),
      );
    } catch {
      return;
    }
    const dated = await Promise.all(
      entries.map(async (e) => ({ e, t: (await fs.stat(join(this.cache!, e))).mtimeMs })),
    );
    dated.sort((a, b) => b.t - a.t);
    for (const { e } of dated.slice(keep)) await fs.rm(join(this.cache, e), { force: true });
  }
}

const random = () => randomBytes(4).toString('hex');

// Downloads of a process killed while restoring (no cache): `resumable-state-<pid>-<hex>.ckpt`.
async function removeDeadDownloads(): Promise<void> {
  try {
    for (const e of await fs.readdir(tmpdir())) {
      const pid = /^resumable-state-(\d+)-[0-9a-f]+\.ckpt$/.exec(e)?.[1];
      if (pid !== undefined && !isProcessAlive(Number(pid))) {
        await fs.rm(join(tmpdir(), e), { force: true });
      }
    }
  } catch {}
}

/** True when `path` has `size` bytes and is an intact container (trailer and checksum). */
async function isIntact(path: string, size: number): Promise<boolean> {
  try {
    if ((await fs.stat(path)).size !== size) return false;
    return await verify(createReadStream(path, { highWaterMark: 1 << 20 }));
  } catch {
    return false;
  }
}
