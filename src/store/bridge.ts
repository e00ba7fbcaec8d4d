/**
 * The synchronous face of a shared store. Its asynchronous implementation (S3, Redis) lives
 * in the background thread; this side posts each call there and blocks on shared memory
 * until the answer is posted back, so `restore()` and `save()` keep their synchronous
 * contract. Background saves go to the same instance, which also renews the lease.
 */
import { readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { CorruptCheckpointError, StoreError } from '../errors.js';
import { onExit } from '../hooks/exit.js';
import { currentProcess } from '../process-identity.js';
import { Background } from '../writer/background.js';
import { BUILT_IN } from '../writer/protocol.js';
import { openFileSource } from './file.js';
import { waitForLease } from './lease-wait.js';
import type { LeaseState, RemoteGeneration } from './remote.js';
import type { FetchedGeneration } from './remote-host.js';
import type { CheckpointJournal, CheckpointStore, Generation, StoredJournal } from './store.js';
import { type StoreTarget, withTarget } from './thread-target.js';

/** Options of `bridgedStore`. */
export interface BridgeOptions {
  /** Human-readable location of a checkpoint, e.g. `s3://bucket/prefix/name`. */
  location(name: string): string;
  /** Folder for local copies, so a restart on this machine restores without downloading. */
  cache?: string;
  /** How long one blocking call may take before it fails with StoreError (default 10 min). */
  callTimeout?: number;
  /** True when the store implements `journal` (AsyncJournalStore): `once()` then appends. */
  journal?: boolean;
}

/**
 * A CheckpointStore whose work runs in the background thread on the store built from
 * `target` (an AsyncCheckpointStore factory: `(await import(module))[name](...args)`).
 * The arguments cross a thread boundary, so they must be plain data.
 */
export function bridgedStore(target: StoreTarget, options: BridgeOptions): CheckpointStore {
  const host: StoreTarget = {
    module: BUILT_IN.remoteHost,
    name: 'hostRemoteStore',
    args: [target, options.cache === undefined ? {} : { cache: resolve(options.cache) }],
  };
  const timeout = options.callTimeout ?? 600_000;
  const call = (method: string, ...args: unknown[]) =>
    Background.get().call(host, method, args, timeout);
  // The remote generations behind the Generations last listed, by name and location.
  const remote = new Map<string, Map<string, RemoteGeneration>>();
  const staging = new Staging();

  function fetch(name: string, generation: Generation): FetchedGeneration {
    const found = remote.get(name)?.get(generation.location);
    if (found === undefined) {
      throw new CorruptCheckpointError(`${generation.location} is not a known generation`);
    }
    const local = call('fetch', name, found) as FetchedGeneration;
    // The next save is about this size: its buffer is made ready while the state decodes.
    staging.prepare(found.size);
    return local;
  }

  const journal: CheckpointJournal = {
    read: (name) => call('journalRead', name) as StoredJournal[],
    create(name, epoch) {
      // Created by its first append: nothing to do now.
      return {
        append: async (bytes) => {
          await Background.get().callAsync(host, 'journalAppend', [name, epoch, bytes]);
        },
        appendSync(bytes) {
          call('journalAppend', name, epoch, bytes);
        },
        close() {},
      };
    },
    drop(name, epoch) {
      call('journalDrop', name, epoch);
    },
    lastModified: (name) => call('journalModified', name) as number | undefined,
  };

  const store: CheckpointStore = {
    ...(options.journal === true ? { journal } : {}),
    locate: (name) => options.location(name),
    generations(name) {
      const list = call('generations', name) as RemoteGeneration[];
      const known = new Map<string, RemoteGeneration>();
      remote.set(name, known);
      return list.map((g, index) => {
        const location = `${options.location(name)}@${g.id}`;
        known.set(location, g);
        return { index, location };
      });
    },
    read(name, generation) {
      const local = fetch(name, generation);
      try {
        return readFileSync(local.path);
      } finally {
        if (local.temporary) rmSync(local.path, { force: true });
      }
    },
    open(name, generation) {
      const local = fetch(name, generation);
      const where = generation.location;
      const cannot = (err: unknown) =>
        new StoreError(`Cannot read ${where}: ${(err as Error).message}`, { cause: err });
      const drop = () => {
        if (local.temporary) rmSync(local.path, { force: true });
      };
      let source: ReturnType<typeof openFileSource>;
      try {
        source = openFileSource(local.path, where, cannot);
      } catch (err) {
        drop();
        throw err;
      }
      return {
        ...source,
        close() {
          source.close();
          drop();
        },
      };
    },
    write(name, parts, keep) {
      staging.run(parts, (bytes) => call('write', name, [bytes], keep));
    },
    remove(name) {
      call('remove', name);
    },
    moveAside: (name, tag) => call('moveAside', name, tag) as string[],
    lock(name, lockOptions = {}) {
      const owner = { ...currentProcess(), since: new Date().toISOString() };
      waitForLease(
        name,
        options.location(name),
        lockOptions,
        (mayWait) => call('lock', name, owner, mayWait) as LeaseState | undefined,
      );
      let held = true;
      // A lease that cannot be handed back (the store is unreachable) expires on its own.
      const release = () => {
        if (!held) return;
        held = false;
        removeExitHook();
        try {
          call('unlock', name);
        } catch {}
      };
      // A process that ends without close() hands its lease back rather than let it expire.
      const removeExitHook = onExit(release);
      return release;
    },
    cleanup(name) {
      call('cleanup', name);
    },
  };
  return withTarget(store, host);
}

/** Below this, a save's buffer is not made ready ahead (its pages cost next to nothing). */
const PREPARE_MIN_BYTES = 1 << 20;

/**
 * The shared memory a save's bytes cross to the background thread in (#17.4). Posted as
 * they were, the parts went through a structured clone: serialized on this thread, then
 * copied again into fresh memory on the other, 0.4-1.2 s for the 100 MB of S1 before the
 * upload began. Copied here once into shared memory instead, and into the same buffer every
 * save: a copy into fresh memory pays a page fault per 4 KiB (~450 ms for 100 MB on a busy
 * 2-core VM, against ~10 ms into pages already there). So a store that saves keeps a buffer
 * as large as its largest save, as the background writer's staging buffers do (#17.2).
 */
class Staging {
  #buffer: SharedArrayBuffer | undefined;

  /** Allocates the buffer for saves of about `bytes` and has the background thread fault it in. */
  prepare(bytes: number): void {
    if (this.#buffer !== undefined || bytes < PREPARE_MIN_BYTES) return;
    this.#buffer = new SharedArrayBuffer(bytes + (bytes >> 4));
    // Never held off: these saves run in the background thread, between its prefault steps.
    Background.get().prefault(this.#buffer, new Int32Array(new SharedArrayBuffer(4)));
  }

  /** Runs `send` with `parts` concatenated in the buffer (grown when too small). */
  run(parts: readonly Uint8Array[], send: (bytes: Uint8Array) => void): void {
    const size = parts.reduce((sum, part) => sum + part.byteLength, 0);
    if (this.#buffer === undefined || this.#buffer.byteLength < size) {
      const grown = Math.ceil((this.#buffer?.byteLength ?? 0) * 1.5);
      this.#buffer = new SharedArrayBuffer(Math.max(size, grown));
    }
    const bytes = new Uint8Array(this.#buffer, 0, size);
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.byteLength;
    }
    try {
      send(bytes);
    } catch (err) {
      // A call that failed here (a timeout) may still be uploading from it in the background
      // thread: the next save must not overwrite those bytes.
      this.#buffer = undefined;
      throw err;
    }
  }
}
