/**
 * Main-thread side of background saves for one checkpoint: stages a snapshot in one of two
 * reusable shared buffers and hands it to the background thread, which compresses,
 * checksums and writes it. At most one write is in flight; a newer snapshot replaces one
 * still queued behind it.
 */
import type { EncodedState } from '../codec/serializer.js';
import { CheckpointError, StoreError } from '../errors.js';
import { onExit } from '../hooks/exit.js';
import type { Background } from './background.js';
import {
  type ErrorReport,
  Slot,
  type SnapshotDescriptor,
  Status,
  type StoreTarget,
  type WriteResult,
} from './protocol.js';
import { stageSnapshot } from './staging.js';

/** How long the exit hook waits for a write in flight. */
const EXIT_WAIT_MS = 30_000;

export class BackgroundWriter {
  readonly #status = new Int32Array(new SharedArrayBuffer(Status.BYTES));
  readonly #buffers: (SharedArrayBuffer | undefined)[] = [undefined, undefined];
  readonly #background: Background;
  readonly #target: StoreTarget;
  readonly #due: Int32Array;
  #seq = 0;
  #failuresSeen = 0;
  #removeExitHook: (() => void) | undefined;

  constructor(background: Background, target: StoreTarget, due: Int32Array) {
    this.#background = background;
    this.#target = target;
    this.#due = due;
  }

  /** Stages `encoded` and queues it; returns its sequence number. */
  submit(descriptor: Omit<SnapshotDescriptor, 'chunks'>, encoded: EncodedState): number {
    const slot = this.#takeSlot();
    const data = stageSnapshot(this.#buffers[slot], descriptor, encoded);
    this.#buffers[slot] = data;
    const seq = ++this.#seq;
    Atomics.store(this.#status, Status.SLOTS + slot, seq);
    this.#background.postWrite({
      type: 'write',
      status: this.#status,
      slot,
      seq,
      data,
      target: this.#target,
      due: this.#due,
    });
    this.#removeExitHook ??= onExit(() => this.waitSync(EXIT_WAIT_MS));
    return seq;
  }

  // A free slot, or the queued one taken back (its snapshot is superseded). The background
  // thread holds at most one slot, so one of the two is always free or queued.
  #takeSlot(): number {
    for (;;) {
      for (const slot of [0, 1]) {
        const i = Status.SLOTS + slot;
        if (Atomics.compareExchange(this.#status, i, Slot.FREE, Slot.FILLING) === Slot.FREE)
          return slot;
      }
      for (const slot of [0, 1]) {
        const i = Status.SLOTS + slot;
        const queued = Atomics.load(this.#status, i);
        if (
          queued > 0 &&
          Atomics.compareExchange(this.#status, i, queued, Slot.FILLING) === queued
        ) {
          return slot;
        }
      }
      // Both claimed or changing under us: the background thread is finishing; wait a moment.
      Atomics.wait(this.#status, Status.DONE, Atomics.load(this.#status, Status.DONE), 5);
    }
  }

  /** True while a submitted snapshot is not yet written. */
  get busy(): boolean {
    return Atomics.load(this.#status, Status.DONE) < this.#seq;
  }

  /** Blocks until every submitted snapshot is written or `timeoutMs` passed; true if done. */
  waitSync(timeoutMs: number): boolean {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(this.#status, Status.DONE);
      if (done >= this.#seq) return true;
      const left = deadline - Date.now();
      if (left <= 0 || !this.#background.alive) return false;
      Atomics.wait(this.#status, Status.DONE, done, Math.min(left, 100));
    }
  }

  /** Resolves once every submitted snapshot is written. */
  async wait(): Promise<void> {
    const target = this.#seq;
    // Atomics.waitAsync does not keep the event loop alive on its own.
    const keepAlive = setInterval(() => {}, 60_000);
    try {
      for (;;) {
        const done = Atomics.load(this.#status, Status.DONE);
        if (done >= target || !this.#background.alive) return;
        const waited = Atomics.waitAsync(this.#status, Status.DONE, done, 1000);
        if (waited.async) await waited.value;
      }
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** The error of a failed write not reported yet, rebuilt with its class, code and cause. */
  takeError(): CheckpointError | undefined {
    const failed = Atomics.load(this.#status, Status.FAILED);
    if (failed <= this.#failuresSeen) return undefined;
    this.#failuresSeen = failed;
    const report = this.#read(Status.ERROR_AT, Status.ERROR_LENGTH) as ErrorReport;
    return rebuildError(report);
  }

  /** Sizes and codec of the last successful write. */
  lastResult(): WriteResult | undefined {
    if (Atomics.load(this.#status, Status.RESULT_LENGTH) === 0) return undefined;
    return this.#read(Status.RESULT_AT, Status.RESULT_LENGTH) as WriteResult;
  }

  #read(at: number, lengthIndex: number): unknown {
    const length = Atomics.load(this.#status, lengthIndex);
    return JSON.parse(
      Buffer.from(new Uint8Array(this.#status.buffer, at, length)).toString('utf8'),
    );
  }

  /** Waits for writes in flight (bounded) and stops the exit hook. */
  close(): void {
    this.waitSync(EXIT_WAIT_MS);
    this.#removeExitHook?.();
    this.#removeExitHook = undefined;
  }
}

function rebuildError(report: ErrorReport): CheckpointError {
  let cause: Error | undefined;
  if (report.cause !== undefined) {
    const { name, message, ...rest } = report.cause;
    cause = Object.assign(new Error(message), rest);
    cause.name = name;
  }
  const options = cause === undefined ? {} : { cause };
  if (report.code === 'CHECKPOINT_STORE' || report.name === 'StoreError') {
    return new StoreError(report.message, options);
  }
  return new CheckpointError(`Background save failed: ${report.message}`, options);
}
