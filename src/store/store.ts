import type { ByteSource } from '../codec/container.js';

/**
 * The storage interface behind a Checkpoint. Local stores (file, memory) answer
 * synchronously, so `restore()` and `save()` can stay synchronous for the user.
 */

/** Owner of a checkpoint lock, as recorded by the store. */
export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
  /** Boot id, pid namespace and process start time: see `ProcessIdentity` (#14.3). */
  boot?: string;
  pidns?: string;
  start?: string;
}

/** How `lock()` behaves when another process holds the checkpoint. */
export interface LockOptions {
  /**
   * Longest wait (ms) for a lease held by a process this machine cannot judge (another host)
   * to expire; `0` fails at once. Default: the lease's remaining time plus a margin.
   */
  wait?: number | undefined;
  /** Where the one notice line about waiting goes. */
  notice?: ((line: string) => void) | undefined;
}

/** One stored generation of a checkpoint. */
export interface Generation {
  /** Store-specific id; 0 is the latest, 1 the one before, … */
  index: number;
  /** Human-readable location (file path, key) for messages. */
  location: string;
}

/** A journal file open for appending. */
export interface JournalFile {
  /** Appends `bytes`; resolves once they are on stable storage (written and flushed). */
  append(bytes: Uint8Array): Promise<void>;
  /** The same, blocking: at exit and on a signal, when the event loop will not turn again. */
  appendSync(bytes: Uint8Array): void;
  close(): void;
}

/** One stored journal file of a checkpoint. */
export interface StoredJournal {
  /** Its number: journals are replayed in this order. */
  epoch: number;
  location: string;
  bytes: Uint8Array;
}

/**
 * Append-only journals of a checkpoint's finished steps (`once()`), so a step costs an
 * append instead of a rewrite. Stores without one fall back to saving the snapshot.
 */
export interface CheckpointJournal {
  /** Every journal of `name`, oldest epoch first. */
  read(name: string): StoredJournal[];
  /** Creates journal `epoch` of `name` (durably, with its header) for appending. */
  create(name: string, epoch: number): JournalFile;
  /** Deletes the journals of `name` numbered below `epoch`. */
  drop(name: string, epoch: number): void;
  /** When a journal of `name` was last written (ms since the epoch), if it has any. */
  lastModified(name: string): number | undefined;
}

export interface CheckpointStore {
  /** Journals of finished steps; `remove` and `moveAside` include them. Optional. */
  readonly journal?: CheckpointJournal;
  /**
   * True when `write` itself fills in the checksum of parts packed with `deferChecksum`
   * (sealCheckpoint), computing it while the bytes before it are being written (#17.1).
   */
  readonly sealsChecksum?: boolean;
  /** Human-readable location of the latest generation of `name`. */
  locate(name: string): string;
  /** Stored generations of `name`, newest first. */
  generations(name: string): Generation[];
  /** Whole bytes of one generation. */
  read(name: string, generation: Generation): Uint8Array;
  /**
   * Random access to one generation, so large payloads are read straight into their final
   * buffers. Optional: without it, `read()` is used.
   */
  open?(name: string, generation: Generation): ByteSource & { close(): void };
  /**
   * Durably stores `parts` (concatenated) as the new latest generation of `name`, keeping
   * `keep` generations in all. Atomic: a crash leaves the complete old or the complete new.
   */
  write(name: string, parts: readonly Uint8Array[], keep: number): void;
  /** Deletes every generation of `name`. */
  remove(name: string): void;
  /** Moves every generation of `name` aside under `tag`, so new saves never overwrite them; returns where. */
  moveAside(name: string, tag: string): string[];
  /**
   * Takes the single-writer lock of `name`; returns its release. Throws CheckpointLockedError
   * when another live process holds it. Stores without locks omit it.
   */
  lock?(name: string, options?: LockOptions): () => void;
  /**
   * Before a save: checks that this process still holds the lock of `name`, and takes it
   * again if its file is gone (its folder was deleted or replaced) while nobody else holds
   * it; true then. Throws CheckpointLockedError if another process holds it now. Optional.
   */
  checkLock?(name: string): boolean;
  /** Removes what a crashed writer of `name` may have left (temp files). */
  cleanup?(name: string): void;
}
