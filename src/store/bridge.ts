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

  function fetch(name: string, generation: Generation): FetchedGeneration {
    const found = remote.get(name)?.get(generation.location);
    if (found === undefined) {
      throw new CorruptCheckpointError(`${generation.location} is not a known generation`);
    }
    return call('fetch', name, found) as FetchedGeneration;
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
      call('write', name, parts, keep);
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
