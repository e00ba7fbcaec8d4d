/**
 * Errors thrown by resumable-state. Every class carries a stable `code`:
 * codes are the contract, messages may improve (the undici / Node core rule).
 */

/** Base class of every runtime failure of the library. */
export class CheckpointError extends Error {
  /** Stable, machine-readable identifier such as `CHECKPOINT_CORRUPT`. */
  readonly code: string = 'CHECKPOINT_ERROR';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A checkpoint file failed its checksum, magic or length check, or could not be decoded. */
export class CorruptCheckpointError extends CheckpointError {
  override readonly code = 'CHECKPOINT_CORRUPT';
}

/** A value in the state cannot be stored; the message names its path, e.g. `state.model.onStep`. */
export class SerializationError extends CheckpointError {
  override readonly code = 'CHECKPOINT_UNSERIALIZABLE';
  /** Path of the offending value inside the state. */
  readonly path: string;

  constructor(message: string, path: string, options?: { cause?: unknown }) {
    super(message, options);
    this.path = path;
  }
}

/** Who holds a lock, as a CheckpointLockedError names it. */
type Holder = { pid: number; host: string };

/** The owner named when the holder of a lock cannot be known (#16.5: one placeholder). */
export const UNKNOWN_OWNER: Readonly<Holder> = Object.freeze({ pid: 0, host: 'unknown' });

/**
 * Another live process owns this checkpoint: `pid` and `host` name it, or are UNKNOWN_OWNER's
 * when it cannot be known.
 */
export class CheckpointLockedError extends CheckpointError {
  override readonly code = 'CHECKPOINT_LOCKED';
  readonly pid: number;
  readonly host: string;

  constructor(message: string, owner: Holder, options?: { cause?: unknown }) {
    super(message, options);
    this.pid = owner.pid;
    this.host = owner.host;
  }
}

/**
 * A valid checkpoint (its checksums held) holds a state nested too deeply to decode from the
 * current call stack. Not corruption (#11.10): the file is intact, so `restore()` does not
 * fall back to an older generation; restoring from a shallower call, or with a larger stack
 * (`node --stack-size=…`), reads it.
 */
export class StateTooDeepError extends CheckpointError {
  override readonly code = 'CHECKPOINT_TOO_DEEP';
}

/** The store failed (ENOSPC, EACCES, EROFS, network). What was saved before is intact. */
export class StoreError extends CheckpointError {
  override readonly code = 'CHECKPOINT_STORE';
}

/** The saved state has another schema `version` and no `migrate` was given. */
export class VersionMismatchError extends CheckpointError {
  override readonly code = 'CHECKPOINT_VERSION';
}

/**
 * The checkpoint was closed: it no longer owns its files, so it neither reads nor writes
 * them. Open a new `Checkpoint` with the same name to continue from what it saved.
 */
export class CheckpointClosedError extends CheckpointError {
  override readonly code = 'CHECKPOINT_CLOSED';
}

/** The file was written by a newer format version than this library reads. */
export class UnsupportedFormatError extends CheckpointError {
  override readonly code = 'CHECKPOINT_FORMAT';
}

/**
 * `shard: 'auto'` found no usable array index or count in the environment (#15.1): the
 * message names every variable read and what it held.
 */
export class ShardEnvironmentError extends CheckpointError {
  override readonly code = 'CHECKPOINT_SHARD_ENV';
}

/** `collectShards()` found shards with no saved checkpoint: `missing` lists their indexes (#15.3). */
export class MissingShardsError extends CheckpointError {
  override readonly code = 'CHECKPOINT_SHARDS_MISSING';
  /** Indexes of the shards without a checkpoint, ascending. */
  readonly missing: number[];

  constructor(message: string, missing: number[]) {
    super(message);
    this.missing = missing;
  }
}
