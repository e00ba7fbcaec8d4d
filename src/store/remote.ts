import type { LockOwner } from './store.js';

/**
 * The interface a shared store (S3, Redis) implements. Its methods are asynchronous: they
 * run only inside the background thread, which owns one instance per store target. The
 * main thread reaches them through a synchronous bridge (`bridgedStore`), so `restore()`
 * and `save()` stay synchronous for the user while uploads progress during computation.
 *
 * Commit without rename: a write uploads the new generation as an immutable object, then
 * switches a small manifest (or pointer key) to it in one atomic, fenced step, then deletes
 * what fell out of `keep`. A crash at any point leaves the previous manifest current.
 */

/** One committed generation of a checkpoint in a remote store. */
export interface RemoteGeneration {
  /** Unique, immutable id of this generation (never reused, also across machines). */
  id: string;
  /** Bytes of the stored container. */
  size: number;
  /** When it was committed (ISO time). */
  savedAt: string;
  /** Fencing token of the lease it was written under (0 when written without a lease). */
  token: number;
}

/** The holder of a lease, as stored next to the checkpoint. */
export interface LeaseOwner extends LockOwner {
  /** Random id of the store instance holding it (one per process and store). */
  id: string;
}

/** A lease as another process sees it (#14.3). */
export interface LeaseState {
  holder: LeaseOwner & { token: number };
  /** Milliseconds until it expires unless renewed (<= 0: expired). */
  expiresIn: number;
  /**
   * When it expires, in ms on a clock of the store's choosing; it grows only when the holder
   * renews the lease, which proves the holder alive.
   */
  expiresAt: number;
}

/** One journal of finished steps (`once()`), as a shared store keeps it. */
export interface RemoteJournal {
  epoch: number;
  location: string;
  bytes: Uint8Array;
}

/**
 * Optional journal of a shared store: appends of step records (group-committed batches),
 * so `once()` costs an append rather than a snapshot save. Fenced like `write`.
 */
export interface AsyncJournalStore {
  /** Every journal of `name`, oldest epoch first. */
  read(name: string): Promise<RemoteJournal[]>;
  /** Appends `bytes` to journal `epoch` (created with `magic` first); durable when resolved. */
  append(name: string, epoch: number, magic: Uint8Array, bytes: Uint8Array): Promise<void>;
  /** Deletes the journals numbered below `epoch`. */
  drop(name: string, epoch: number): Promise<void>;
  /** When a journal of `name` was last appended to (ms), if it has any. */
  lastModified(name: string): Promise<number | undefined>;
}

export interface AsyncCheckpointStore {
  /** Journals of finished steps; without one, steps are saved with the snapshot. */
  readonly journal?: AsyncJournalStore;
  /** Human-readable location of `name` (e.g. `s3://bucket/prefix/name`, `redis://host/prefix:name`). */
  locate(name: string): string;
  /** Committed generations of `name`, newest first (from the manifest, one round trip). */
  generations(name: string): Promise<RemoteGeneration[]>;
  /**
   * Streams one generation's bytes into a new file at `path` (memory stays bounded).
   * Throws `StoreError` if it is gone or its size differs from `generation.size`.
   */
  download(name: string, generation: RemoteGeneration, path: string): Promise<void>;
  /**
   * Uploads `parts` (concatenated) as a new generation, commits it as the latest and then
   * deletes generations beyond `keep` (and their data). Fenced: when this instance holds
   * the lease of `name`, the commit is refused with `CheckpointLockedError` if another
   * holder took the lease over (a newer token). Returns the committed generation.
   */
  write(name: string, parts: readonly Uint8Array[], keep: number): Promise<RemoteGeneration>;
  /** Deletes every generation of `name`, its manifest and its data. */
  remove(name: string): Promise<void>;
  /** Moves every generation of `name` aside under `tag` (`name.tag`); returns the new locations. */
  moveAside(name: string, tag: string): Promise<string[]>;
  /**
   * Takes the lease of `name` for this instance (expiry `leaseTtl`, renewed in the
   * background every third of it until `unlock`). A live lease of another holder throws
   * `CheckpointLockedError` naming its pid and host; an expired one is taken over with a
   * higher fencing token. So is a live one whose token is `replace`: its holder was found
   * dead (#14.3), and the switch is atomic, so a lease renewed or taken meanwhile stays.
   */
  lock(name: string, owner: LockOwner, replace?: number): Promise<void>;
  /**
   * The current lease of `name`, if any, with its holder. Optional: without it, a restart
   * cannot judge or wait for a holder, and fails at once while the lease lives.
   */
  lease?(name: string): Promise<LeaseState | undefined>;
  /** Stops renewing and deletes the lease of `name` if this instance still holds it. */
  unlock(name: string): Promise<void>;
  /**
   * Removes what a crashed writer of `name` left: aborts its unfinished multipart uploads
   * and deletes uploaded but never committed generation data. Called while holding the lease.
   */
  cleanup(name: string): Promise<void>;
  /** Closes connections (timers are unref'd, so an open store never keeps a process alive). */
  close(): Promise<void>;
}
