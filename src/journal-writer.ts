/**
 * Group commit for the step journal: records queue up while one append (write + fdatasync)
 * is in flight, then all of them go in the next one, so many steps share each flush. Urgent
 * records (durable: 'step') start a flush at once; others wait at most `delayMs`.
 */
import { StoreError } from './errors.js';
import { onExit } from './hooks/exit.js';

/** Where a batch of records goes: a journal file, or a snapshot save for stores without one. */
export interface JournalSink {
  append(bytes: Uint8Array): Promise<void>;
  appendSync(bytes: Uint8Array): void;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class JournalWriter {
  #pending: Uint8Array[] = [];
  #waiters: Waiter[] = [];
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The error of a failed flush, for callers that did not wait for it (batched records). */
  #error: unknown;
  readonly #removeExitHook: () => void;

  /** `sink()` is asked for each batch, so a rotation takes effect at the next flush. */
  constructor(
    readonly sink: () => JournalSink,
    readonly delayMs: number,
  ) {
    // Batched records not flushed yet are written before the process ends normally.
    this.#removeExitHook = onExit(() => {
      try {
        this.flushSync();
      } catch (err) {
        process.stderr.write(`resumable-state: ${(err as Error).message}\n`);
        if (!process.exitCode) process.exitCode = 1;
      }
    });
  }

  /** Queues a record; the promise resolves once it is durable. */
  add(record: Uint8Array, urgent: boolean): Promise<void> {
    this.#pending.push(record);
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (urgent) this.#kick();
    else this.#timer ??= setTimeout(() => this.#kick(), this.delayMs);
    return done;
  }

  /** True when no append is in flight. */
  get idle(): boolean {
    return this.#flushing === undefined;
  }

  /** Throws (once) the error of a flush nobody waited for. */
  takeError(): void {
    const error = this.#error;
    this.#error = undefined;
    if (error !== undefined) throw error;
  }

  /** Resolves once every queued record is durable; rejects if a flush failed. */
  async drain(): Promise<void> {
    this.#kick();
    while (this.#flushing !== undefined) await this.#flushing;
    this.takeError();
  }

  #kick(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flushing ??= this.#flushLoop().finally(() => {
      this.#flushing = undefined;
    });
  }

  async #flushLoop(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#take();
      try {
        await this.sink().append(batch.bytes);
        for (const w of batch.waiters) w.resolve();
      } catch (err) {
        this.#fail(batch.waiters, err);
      }
    }
  }

  /** Writes every queued record now, blocking: at exit, on a signal, before a save. */
  flushSync(): void {
    if (this.#pending.length === 0) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#take();
    try {
      this.sink().appendSync(batch.bytes);
    } catch (err) {
      this.#fail(batch.waiters, err);
      this.takeError();
    }
    for (const w of batch.waiters) w.resolve();
  }

  #take(): { bytes: Uint8Array; waiters: Waiter[] } {
    const bytes = Buffer.concat(this.#pending);
    const waiters = this.#waiters;
    this.#pending = [];
    this.#waiters = [];
    return { bytes, waiters };
  }

  #fail(waiters: Waiter[], err: unknown): void {
    const error =
      err instanceof StoreError
        ? err
        : new StoreError(`Cannot append to the step journal: ${(err as Error)?.message}`, {
            cause: err,
          });
    this.#error = error;
    for (const w of waiters) w.reject(error);
  }

  /** Flushes what is queued (blocking) and stops the exit hook. */
  close(): void {
    this.#removeExitHook();
    this.flushSync();
  }
}
