/**
 * Group commit for the step journal: records queue up while one append (write + fdatasync)
 * is in flight, then all of them go in the next one, so many steps share each flush. Urgent
 * records (durable: 'step') start a flush at once; others wait at most `delayMs`.
 */
import { CheckpointClosedError, CheckpointError, StoreError } from './errors.js';
import { onExit, warnNow } from './hooks/exit.js';

/** Where a batch of records goes: a journal file, or a snapshot save for stores without one. */
export interface JournalSink {
  append(bytes: Uint8Array): Promise<void>;
  appendSync(bytes: Uint8Array): void;
}

/** What the owner of the journal is told. */
export interface JournalEvents {
  /** An append failed: the file may end in torn bytes, so appends must go to a new one. */
  failed(): void;
  /** No append is in flight any more: retired files can be closed. */
  idle(): void;
  /**
   * Where a failure nobody is left to catch (at exit) is said: the checkpoint's `log`.
   * Without one, a process warning.
   */
  log?(line: string): void;
}

interface Entry {
  bytes: Uint8Array;
  /** True when the caller waits for the promise (it gets the error itself). */
  awaited: boolean;
  resolve(): void;
  reject(err: unknown): void;
  /** The record did not reach the journal: its step is not recorded after all. */
  lost(): void;
}

export class JournalWriter {
  #pending: Entry[] = [];
  #inFlight: Entry[] = [];
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The error of a failed flush that a caller did not wait for (batched records). */
  #error: unknown;
  #closed = false;
  readonly #removeExitHook: () => void;

  /** `sink()` is asked for each batch, so a rotation takes effect at the next flush. */
  constructor(
    readonly sink: () => JournalSink,
    readonly delayMs: number,
    readonly events: JournalEvents,
  ) {
    // Batched records not flushed yet are written before the process ends normally.
    this.#removeExitHook = onExit(() => {
      try {
        this.flushSync();
        this.takeError();
      } catch (err) {
        const line = (err as Error).message;
        if (events.log === undefined) warnNow(line);
        else events.log(`resumable-state: ${line}`);
        if (!process.exitCode) process.exitCode = 1;
      }
    }, events.log);
  }

  /**
   * Queues a record; the promise resolves once it is durable. `awaited`: the caller waits
   * for it (durable: 'step') and is flushed at once. `lost` is called if it never lands.
   */
  add(record: Uint8Array, awaited: boolean, lost: () => void): Promise<void> {
    if (this.#closed) {
      lost();
      return Promise.reject(
        new CheckpointClosedError('The checkpoint is closed: the step was not recorded'),
      );
    }
    const done = new Promise<void>((resolve, reject) =>
      this.#pending.push({ bytes: record, awaited, resolve, reject, lost }),
    );
    if (awaited) this.#kick();
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
      this.events.idle();
      // #11.6c: a record queued by a callback of the last batch, after the loop's last look
      // but before this runs, found #flushing still set; nothing else would ever write it
      // (an awaited record has no timer), so its step would never settle.
      if (this.#pending.length > 0) this.#kick();
    });
  }

  async #flushLoop(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending;
      this.#pending = [];
      this.#inFlight = batch;
      try {
        await this.sink().append(concat(batch));
        for (const e of batch) e.resolve();
      } catch (err) {
        this.#fail(batch, err);
      } finally {
        this.#inFlight = [];
      }
    }
  }

  /**
   * Writes every queued record now, blocking: at exit, on a signal, at close. The batch of
   * an append still in flight is written again too (a record read twice is harmless), since
   * a process that ends now would not see that append finish.
   */
  flushSync(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = [...this.#inFlight, ...this.#pending];
    if (batch.length === 0) return;
    const fresh = this.#pending;
    this.#pending = [];
    try {
      this.sink().appendSync(concat(batch));
    } catch (err) {
      this.#fail(fresh, err);
      return;
    }
    for (const e of fresh) e.resolve();
  }

  #fail(batch: Entry[], err: unknown): void {
    const error =
      err instanceof CheckpointError
        ? err
        : new StoreError(`Cannot append to the step journal: ${(err as Error)?.message}`, {
            cause: err,
          });
    this.events.failed();
    // A caller waiting for its record gets the error; batched callers hear of it later.
    if (batch.some((e) => !e.awaited)) this.#error = error;
    for (const e of batch) {
      e.lost();
      e.reject(error);
    }
  }

  /** Drops the queued records (`clear()`): they must not bring back what was cleared. */
  discard(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const e of this.#pending.splice(0)) e.resolve();
  }

  /** Flushes what is queued (blocking), refuses new records; throws a failure not reported yet. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#removeExitHook();
    this.flushSync();
    this.takeError();
  }
}

function concat(entries: Entry[]): Uint8Array {
  return entries.length === 1 ? entries[0]!.bytes : Buffer.concat(entries.map((e) => e.bytes));
}
