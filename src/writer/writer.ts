/**
 * Main-thread side of background saves for one checkpoint: stages a snapshot in one of two
 * reusable shared buffers and hands it to the background thread, which compresses,
 * checksums and writes it. At most one write is in flight; a newer snapshot replaces one
 * still queued behind it.
 */
import type { EncodedState } from '../codec/serializer.js';
import {
  CheckpointError,
  CheckpointLockedError,
  CorruptCheckpointError,
  StoreError,
  UNKNOWN_OWNER,
} from '../errors.js';
import { onExit } from '../hooks/exit.js';
import type { Background } from './background.js';
import {
  type ErrorReport,
  type ReportArea,
  Slot,
  type SnapshotDescriptor,
  Status,
  type StoreTarget,
  type WriteResult,
} from './protocol.js';
import { PREPARE_MIN_BYTES, stageSnapshot, stagingBytesFor } from './staging.js';

/** How long the exit hook waits for a write in flight. */
const EXIT_WAIT_MS = 30_000;

/**
 * What it takes to wait for and report this checkpoint's writes: shared memory and two
 * counters, no staging buffers. The exit hook holds only this, so a checkpoint that is never
 * closed can still be garbage-collected with its state and buffers.
 */
class WriteTracker {
  readonly status = new Int32Array(new SharedArrayBuffer(Status.BYTES));
  /** Sequence number of the last snapshot submitted. */
  seq = 0;
  failuresSeen = 0;

  constructor(readonly background: Background) {}

  /** Blocks until every submitted snapshot is written, the thread died, or `timeoutMs` passed. */
  waitSync(timeoutMs: number): boolean {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(this.status, Status.DONE);
      if (done >= this.seq) return true;
      const left = deadline - Date.now();
      if (left <= 0 || !this.background.alive) return false;
      Atomics.wait(this.status, Status.DONE, done, Math.min(left, 100));
    }
  }

  /** The error of a failed write not reported yet, rebuilt with its class, code and cause. */
  takeError(): CheckpointError | undefined {
    const failed = Atomics.load(this.status, Status.FAILED);
    if (failed <= this.failuresSeen) return undefined;
    this.failuresSeen = failed;
    return rebuildError(readReport(this.status, Status.ERROR) as ErrorReport);
  }
}

export class BackgroundWriter {
  readonly #buffers: (SharedArrayBuffer | undefined)[] = [undefined, undefined];
  readonly #tracker: WriteTracker;
  readonly #target: StoreTarget;
  readonly #due: Int32Array;
  readonly #removeExitHook: () => void;
  /** Above 0 while a save runs on the calling thread: the prefault waits (#17.1). */
  readonly #saving = new Int32Array(new SharedArrayBuffer(4));

  /** `log` is the checkpoint's: a save that fails at exit is said there (#16.5). */
  constructor(
    background: Background,
    target: StoreTarget,
    due: Int32Array,
    name: string,
    log: (line: string) => void,
  ) {
    const tracker = new WriteTracker(background);
    this.#tracker = tracker;
    this.#target = target;
    this.#due = due;
    this.#removeExitHook = onExit(() => flushAtExit(tracker, name, log), log);
  }

  /**
   * Allocates the first staging buffer ahead of the first due sync(), for a snapshot of
   * about `bytes`, and has the background thread fault its pages in: copying into fresh
   * memory ran at a third of the speed, the first sync() pausing 48 ms on S1 against 17 ms
   * later (#17.2). Nothing is written into it here, so saved bytes do not change.
   */
  prepare(bytes: number): void {
    if (this.#buffers[0] !== undefined || bytes < PREPARE_MIN_BYTES) return;
    this.#buffers[0] = new SharedArrayBuffer(stagingBytesFor(bytes));
    this.#tracker.background.prefault(this.#buffers[0], this.#saving);
  }

  /**
   * Holds off the background thread's prefault while a save runs on this thread; returns
   * the function that lets it go on (#17.1).
   */
  holdPrefault(): () => void {
    const saving = this.#saving;
    Atomics.add(saving, 0, 1);
    return () => Atomics.sub(saving, 0, 1);
  }

  /** Stages `encoded` and queues it; returns its sequence number. */
  submit(descriptor: Omit<SnapshotDescriptor, 'chunks'>, encoded: EncodedState): number {
    const slot = this.#takeSlot();
    const data = stageSnapshot(this.#buffers[slot], descriptor, encoded);
    this.#buffers[slot] = data;
    const tracker = this.#tracker;
    const seq = ++tracker.seq;
    Atomics.store(tracker.status, Status.SLOTS + slot, seq);
    tracker.background.postWrite({
      type: 'write',
      status: tracker.status,
      slot,
      seq,
      data,
      target: this.#target,
      due: this.#due,
    });
    return seq;
  }

  // A free slot, or the queued one taken back (its snapshot is superseded). The background
  // thread holds at most one slot, so one of the two is always free or queued.
  #takeSlot(): number {
    const { status } = this.#tracker;
    for (;;) {
      for (const slot of [0, 1]) {
        const i = Status.SLOTS + slot;
        if (Atomics.compareExchange(status, i, Slot.FREE, Slot.FILLING) === Slot.FREE) return slot;
      }
      for (const slot of [0, 1]) {
        const i = Status.SLOTS + slot;
        const queued = Atomics.load(status, i);
        if (queued > 0 && Atomics.compareExchange(status, i, queued, Slot.FILLING) === queued) {
          return slot;
        }
      }
      // Both claimed or changing under us: the background thread is finishing; wait a moment.
      Atomics.wait(status, Status.DONE, Atomics.load(status, Status.DONE), 5);
    }
  }

  /**
   * What another instance at the same location waits on before reading or cleaning up:
   * small, so holding it does not keep this writer's buffers alive.
   */
  get pending(): { waitSync(timeoutMs: number): boolean } {
    return this.#tracker;
  }

  /** Blocks until every submitted snapshot is written, the thread died, or `timeoutMs` passed. */
  waitSync(timeoutMs: number): boolean {
    return this.#tracker.waitSync(timeoutMs);
  }

  /** Resolves once every submitted snapshot is written (or the thread died). */
  async wait(): Promise<void> {
    const { status, background } = this.#tracker;
    const target = this.#tracker.seq;
    // Atomics.waitAsync does not keep the event loop alive on its own.
    const keepAlive = setInterval(() => {}, 60_000);
    try {
      for (;;) {
        const done = Atomics.load(status, Status.DONE);
        if (done >= target) return;
        if (!background.alive) {
          throw new StoreError('The background thread died before the save was written');
        }
        const waited = Atomics.waitAsync(status, Status.DONE, done, 1000);
        if (waited.async) await waited.value;
      }
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** The error of a failed write not reported yet, rebuilt with its class, code and cause. */
  takeError(): CheckpointError | undefined {
    return this.#tracker.takeError();
  }

  /** Sizes and codec of the last successful write. */
  lastResult(): WriteResult | undefined {
    if (Atomics.load(this.#tracker.status, Status.RESULT.length) === 0) return undefined;
    return readReport(this.#tracker.status, Status.RESULT) as WriteResult;
  }

  /** Waits for writes in flight (bounded), drops the staging buffers and the exit hook. */
  close(): boolean {
    const done = this.waitSync(EXIT_WAIT_MS);
    this.#removeExitHook();
    this.#buffers.fill(undefined);
    return done;
  }
}

// At exit, pending writes are waited for; a failure or a timeout is said through the
// checkpoint's log and makes the exit code 1, since nobody is left to catch it.
function flushAtExit(tracker: WriteTracker, name: string, log: (line: string) => void): void {
  const finished = tracker.waitSync(EXIT_WAIT_MS);
  const error = tracker.takeError();
  let problem: string | undefined;
  if (error !== undefined) problem = `the last save of "${name}" failed: ${error.message}`;
  else if (!finished) problem = `the last save of "${name}" did not finish before exit`;
  if (problem === undefined) return;
  log(`resumable-state: ${problem}`);
  if (!process.exitCode) process.exitCode = 1;
}

/** Reads a JSON report written under a seqlock (retries while the writer is mid-update). */
function readReport(status: Int32Array, area: ReportArea): unknown {
  for (;;) {
    const before = Atomics.load(status, area.version);
    if (before % 2 === 0) {
      const length = Atomics.load(status, area.length);
      const bytes = Buffer.from(new Uint8Array(status.buffer, area.at, length));
      if (Atomics.load(status, area.version) === before) return JSON.parse(bytes.toString('utf8'));
    }
    Atomics.wait(status, area.version, Atomics.load(status, area.version), 1);
  }
}

/** An error reported by the background thread, with its class, code, owner and cause. */
export function rebuildError(
  report: ErrorReport,
  context = 'Background save failed',
): CheckpointError {
  let cause: Error | undefined;
  if (report.cause !== undefined) {
    const { name, message, ...rest } = report.cause;
    cause = Object.assign(new Error(message), rest);
    cause.name = name;
  }
  const options = cause === undefined ? {} : { cause };
  switch (report.code) {
    case 'CHECKPOINT_STORE':
      return new StoreError(report.message, options);
    case 'CHECKPOINT_LOCKED':
      return new CheckpointLockedError(report.message, report.owner ?? UNKNOWN_OWNER, options);
    case 'CHECKPOINT_CORRUPT':
      return new CorruptCheckpointError(report.message, options);
  }
  // Another class (TypeError, a plain Error): said with its name, kept as the cause.
  const original = Object.assign(
    new Error(report.message),
    report.code ? { code: report.code } : {},
  );
  original.name = report.name;
  if (cause !== undefined) original.cause = cause;
  return new CheckpointError(`${context}: ${report.name}: ${report.message}`, { cause: original });
}
