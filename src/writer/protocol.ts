import type { MessagePort } from 'node:worker_threads';
import type { Compression } from '../codec/compression.js';
import type { SignalShare } from '../hooks/signals-worker.js';

/**
 * Messages and shared memory between the main thread and the background thread.
 * The background thread keeps time (raising due flags that sync() reads with a plain load:
 * ~1 ns, no clock read), watches for signals even while the main thread is busy, and
 * compresses, checksums and writes snapshots.
 */

/**
 * Indexes in the process-wide control array: the thread's liveness. The signal state has
 * its own array, owned by hooks/signals.ts and hooks/signals-worker.ts.
 */
export const Control = {
  /** Set when the background thread has died: writes can no longer be waited for. */
  DEAD: 0,
  /**
   * Counted up by the background thread twice a second. A thread that ends without its
   * exit handlers (out of memory) stops counting: waits on it then end instead of hanging.
   */
  HEARTBEAT: 1,
  /** Set to 1 by the background thread once it listens for messages. */
  READY: 2,
  /** Flushes handed to the background thread and not finished yet (store/writeback.ts). */
  WRITEBACKS: 3,
  /** Length of the control array. */
  LENGTH: 4,
} as const;

/**
 * Per-checkpoint status array (Int32), shared with the background thread. Each of the two
 * staging slots is FREE, FILLING (main thread copying into it), CLAIMED (being written) or,
 * when positive, QUEUED with that sequence number. The main thread may take back a queued
 * slot (compare-and-swap) to put a newer snapshot in it; the background thread claims a
 * slot only if it still holds the sequence number of the message it is handling, so a
 * replaced snapshot is never written.
 */
export const Status = {
  SLOTS: 0, // 0 and 1
  /** Highest sequence number finished (written or failed). */
  DONE: 2,
  /** Sequence number of the last failed write. */
  FAILED: 3,
  /** Report of the last successful write (seq, sizes, codec). */
  RESULT: { version: 4, length: 5, at: 32, bytes: 1024 },
  /** Report of the last failed write (error class, code, message, cause). */
  ERROR: { version: 6, length: 7, at: 32 + 1024, bytes: 8192 },
  /** Total bytes of the status buffer. */
  BYTES: 32 + 1024 + 8192,
} as const;

/** Where a JSON report lives in the status buffer, guarded by a seqlock version. */
export interface ReportArea {
  version: number;
  length: number;
  at: number;
  bytes: number;
}

export const Slot = { FREE: 0, FILLING: -1, CLAIMED: -2 } as const;

/**
 * Module names of the stores built into the background thread's code: a bundled app has no
 * file of ours to import (#12.3).
 */
export const BUILT_IN = {
  file: 'resumable-state:file-store',
  remoteHost: 'resumable-state:remote-host',
} as const;

/**
 * How to build a store inside the background thread: `(await import(module))[name](...args)`,
 * where `module` is a URL or one of BUILT_IN.
 */
export interface StoreTarget {
  module: string;
  name: string;
  args: unknown[];
}

/** Describes a staged snapshot; JSON at the start of the slot's data. */
export interface SnapshotDescriptor {
  name: string;
  keep: number;
  compression: Compression;
  meta: Record<string, unknown>;
  /** Byte lengths of the chunks that follow: the v8 structure, then the segments. */
  chunks: number[];
}

/** What the background thread reports after a write. */
export interface WriteResult {
  /** Sequence number of the snapshot written. */
  seq: number;
  rawBytes: number;
  storedBytes: number;
  codec: string;
}

/** An error that crossed the thread boundary, enough to rebuild its class, code and cause. */
export interface ErrorReport {
  name: string;
  code?: string;
  message: string;
  /** Holder of a lock (CheckpointLockedError). */
  owner?: { pid: number; host: string };
  cause?: {
    name: string;
    message: string;
    code?: string;
    errno?: number;
    syscall?: string;
    path?: string;
  };
}

export type ToBackground =
  | { type: 'arm'; id: number; flag: Int32Array; delay: number }
  | { type: 'disarm'; id: number }
  | { type: 'signals'; on: boolean }
  /**
   * Touches every page of a new staging buffer, so the first sync() does not fault them in
   * (#17.2), pausing while `saving[0]` is above 0 (a save running on the main thread, #17.1).
   */
  | { type: 'prefault'; data: SharedArrayBuffer; saving: Int32Array }
  /** Flushes the file at `path` early, for a save on the main thread (store/writeback.ts). */
  | { type: 'writeback'; path: string }
  | {
      type: 'write';
      status: Int32Array;
      slot: number;
      seq: number;
      data: SharedArrayBuffer;
      target: StoreTarget;
      /** Raised when the write fails, so the next sync() reports it. */
      due: Int32Array;
    }
  | {
      /** Runs `method(...args)` on the store built from `target`; answered on the calls port. */
      type: 'call';
      id: number;
      target: StoreTarget;
      method: string;
      args: unknown[];
      /** Answered as a `reply` message to the main thread's event loop, not on the calls port. */
      async?: boolean;
    };

/** The answer to a call, posted on the calls port before the calls flag is raised to its id. */
export type CallReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: ErrorReport };

export type FromBackground =
  | { type: 'signal'; signal: number }
  | { type: 'signals-unavailable'; reason: string }
  | ({ type: 'reply' } & CallReply);

export interface BackgroundData {
  control: Int32Array;
  /** The signal state and grace period (hooks/signals.ts). */
  signals: SignalShare;
  /** Where answers to calls are posted. */
  calls: MessagePort;
  /** Raised to the id of each answered call; the main thread waits on it. */
  callsDone: Int32Array;
}
