/**
 * Background-thread side of a shared store: wraps an AsyncCheckpointStore with the local
 * cache and the download-to-file step, so the main thread only ever reads local files.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from '../codec/checksum.js';
import type { StoreTarget } from '../writer/protocol.js';
import type { AsyncCheckpointStore, RemoteGeneration } from './remote.js';
import type { LockOwner } from './store.js';

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
  ) {}

  generations(name: string): Promise<RemoteGeneration[]> {
    return this.store.generations(name);
  }

  /**
   * A local, checksum-verified copy of `generation`: the cached one when it is there and
   * intact (same id, size and CRC), else a fresh download.
   */
  async fetch(name: string, generation: RemoteGeneration): Promise<FetchedGeneration> {
    if (this.cache === undefined) {
      const path = join(tmpdir(), `resumable-state-${process.pid}-${random()}.ckpt`);
      await this.#download(name, generation, path);
      return { path, temporary: true };
    }
    const path = this.#cached(name, generation.id);
    if (await isIntact(path, generation.size)) return { path, temporary: false };
    await fs.mkdir(this.cache, { recursive: true, mode: 0o700 });
    const temp = `${path}.tmp-${process.pid}-${random()}`;
    await this.#download(name, generation, temp);
    await fs.rename(temp, path);
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

  /** Writes remotely, then keeps a local copy so a restart here needs no download. */
  async write(name: string, parts: readonly Uint8Array[], keep: number): Promise<void> {
    const generation = await this.store.write(name, parts, keep);
    if (this.cache === undefined) return;
    // The cache is an optimisation: failing to fill it must not fail a committed save.
    try {
      await fs.mkdir(this.cache, { recursive: true, mode: 0o700 });
      const path = this.#cached(name, generation.id);
      const temp = `${path}.tmp-${process.pid}-${random()}`;
      const file = await fs.open(temp, 'wx', 0o600);
      try {
        for (const part of parts) await file.write(part);
      } finally {
        await file.close();
      }
      await fs.rename(temp, path);
      await this.#pruneCache(name, keep);
    } catch {}
  }

  async remove(name: string): Promise<void> {
    await this.store.remove(name);
    await this.#pruneCache(name, 0);
  }

  moveAside(name: string, tag: string): Promise<string[]> {
    return this.store.moveAside(name, tag);
  }

  lock(name: string, owner: LockOwner): Promise<void> {
    return this.store.lock(name, owner);
  }

  unlock(name: string): Promise<void> {
    return this.store.unlock(name);
  }

  async cleanup(name: string): Promise<void> {
    await this.store.cleanup(name);
  }

  #cached(name: string, id: string): string {
    return join(this.cache!, `${encodeURIComponent(name)}.${id}.ckpt`);
  }

  // Keeps the `keep` newest cached copies of `name` (and no temp files of dead downloads).
  async #pruneCache(name: string, keep: number): Promise<void> {
    if (this.cache === undefined) return;
    const prefix = `${encodeURIComponent(name)}.`;
    let entries: string[];
    try {
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

/** True when `path` has `size` bytes and its trailer CRC matches its contents. */
async function isIntact(path: string, size: number): Promise<boolean> {
  try {
    const stat = await fs.stat(path);
    if (stat.size !== size || size < 8) return false;
    let crc = 0;
    for await (const chunk of createReadStream(path, { end: size - 9, highWaterMark: 1 << 20 })) {
      crc = crc32(chunk as Buffer, crc);
    }
    const trailer = Buffer.alloc(4);
    const file = await fs.open(path, 'r');
    try {
      await file.read(trailer, 0, 4, size - 8);
    } finally {
      await file.close();
    }
    return trailer.readUInt32LE(0) === crc;
  } catch {
    return false;
  }
}
