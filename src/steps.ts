/**
 * Memoized steps (`chp.once`): each key's function runs until it succeeds once, ever; its
 * result is journaled and returned by every later call, in this run and the next ones.
 */
import { randomInt } from 'node:crypto';
import { SerializationError } from './errors.js';
import { encodeRecord, type StepError, type StepRecord } from './journal.js';
import type { JournalWriter } from './journal-writer.js';

/** When `once()` resolves relative to its record being on disk. */
export type Durability = 'step' | 'batched';

/** Options of one `once()` call; they override the checkpoint's. */
export interface OnceOptions {
  /** Attempts after the first one when `fn` throws, within this run. Default: the checkpoint's `retries` (0). */
  retries?: number;
  /** Delay before the first retry in ms, doubled for each next one (with jitter, at most 60 s). Default: the checkpoint's `retryDelay` (1000). */
  retryDelay?: number;
  /** Default: the checkpoint's `durable` (`'step'`). */
  durable?: Durability;
}

/** Counts of the steps this checkpoint knows. */
export interface StepStats {
  /** Steps whose result is recorded. */
  done: number;
  /** Steps whose last attempt threw (retried on the next call or run). */
  failed: number;
  /** Steps running now. */
  pending: number;
}

const MAX_RETRY_DELAY = 60_000;

/**
 * How steps hear that a signal is ending the process (#11.6a): from then on no new call
 * starts (a retry is one), and each result is on disk before its once() resolves.
 */
export interface StepGate {
  /** True once a signal is ending the process. */
  readonly closed: boolean;
  /** Told when a step stops running, and when a call is held at the closed gate. */
  changed(): void;
}

const OPEN: StepGate = { closed: false, changed() {} };

export class Steps {
  /** Every key's last outcome: what a save folds into the snapshot. */
  readonly records: Map<string, StepRecord>;
  readonly #running = new Map<string, Promise<unknown>>();
  #done = 0;
  #busy = 0;
  #held = false;

  constructor(
    records: Map<string, StepRecord>,
    readonly writer: JournalWriter,
    readonly defaults: Required<OnceOptions>,
    readonly gate: StepGate = OPEN,
  ) {
    this.records = records;
    for (const r of records.values()) if (r.ok) this.#done++;
  }

  once<R>(key: string, fn: () => R | Promise<R>, options: OnceOptions = {}): Promise<R> {
    const recorded = this.records.get(key);
    if (recorded?.ok) return Promise.resolve(recorded.value as R);
    // The same key already running: share its execution, never run it twice at once.
    const running = this.#running.get(key);
    if (running !== undefined) return running as Promise<R>;
    if (this.gate.closed) return this.#hold();
    const run = this.#run(key, fn, { ...this.defaults, ...options }, recorded?.attempts ?? 0);
    this.#running.set(key, run);
    const forget = () => this.#running.delete(key);
    run.then(forget, forget);
    return run;
  }

  async #run<R>(
    key: string,
    fn: () => R | Promise<R>,
    options: Required<OnceOptions>,
    earlierAttempts: number,
  ): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        await sleep(backoff(options.retryDelay, attempt - 1));
        if (this.gate.closed) return this.#hold();
      }
      const attempts = earlierAttempts + attempt + 1;
      this.#busy++;
      try {
        let value: R;
        try {
          value = await fn();
        } catch (err) {
          if (attempt < options.retries) continue; // not busy while it waits to retry
          await this.#record(
            { key, ok: false, error: stepErrorOf(err), attempts },
            options.durable,
          );
          throw err;
        }
        await this.#record({ key, ok: true, value, attempts }, options.durable);
        return value;
      } finally {
        this.#busy--;
        this.gate.changed();
      }
    }
  }

  /** Writes the finished records now, blocking (a signal arrived). */
  flush(): void {
    this.writer.flushSync();
  }

  /** Steps whose call or record is under way. */
  get busy(): number {
    return this.#busy;
  }

  /** True once a call was held at the closed gate: its program waits for the exit. */
  get held(): boolean {
    return this.#held;
  }

  // #11.6a: a call that must not start never settles; the process ends as the signal asked.
  // Rejecting instead would let a Promise.all batch's catch run the program on (marking
  // items failed, saving, even exiting 0) as if the signal had not come.
  #hold<R>(): Promise<R> {
    this.#held = true;
    this.gate.changed();
    return new Promise<R>(() => {});
  }

  async #record(record: StepRecord, asked: Durability): Promise<void> {
    // After a signal every result is on disk before it is handed out (#11.6a).
    const durable = this.gate.closed ? 'step' : asked;
    let bytes: Uint8Array;
    try {
      bytes = encodeRecord(record);
    } catch (err) {
      if (!(err instanceof SerializationError)) throw err;
      const where = `once(${JSON.stringify(record.key)})`;
      const path = err.path.replace(/^(?:state\.)?r\.value/, where);
      const message = err.message.split(err.path).join(path);
      throw new SerializationError(`The result of ${where} cannot be stored: ${message}`, path, {
        cause: err,
      });
    }
    const before = this.records.get(record.key);
    this.records.set(record.key, record);
    if (record.ok && !before?.ok) this.#done++;
    // A record that never reaches the journal is forgotten: the step runs again next time.
    const lost = () => {
      if (this.records.get(record.key) !== record) return;
      if (before === undefined) this.records.delete(record.key);
      else this.records.set(record.key, before);
      if (record.ok && !before?.ok) this.#done--;
    };
    const written = this.writer.add(bytes, durable === 'step', lost);
    if (durable === 'step') await written;
    // Batched: a failure is kept by the writer and thrown by the next call, flush() or close().
    else written.catch(() => {});
  }

  /** Forgets every step (`clear()`); steps running now still record when they end. */
  clear(): void {
    this.records.clear();
    this.#done = 0;
  }

  /** Keys whose last attempt threw and that are not running now. */
  failed(): string[] {
    const keys: string[] = [];
    for (const [key, r] of this.records) if (!r.ok && !this.#running.has(key)) keys.push(key);
    return keys;
  }

  stats(): StepStats {
    return {
      done: this.#done,
      failed: this.records.size - this.#done - this.#runningRetries(),
      pending: this.#running.size,
    };
  }

  // Keys that failed before and are running again count as pending, not failed.
  #runningRetries(): number {
    let n = 0;
    for (const key of this.#running.keys()) if (this.records.get(key)?.ok === false) n++;
    return n;
  }
}

function stepErrorOf(err: unknown): StepError {
  if (err instanceof Error) {
    const out: StepError = { name: err.name, message: err.message };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    return out;
  }
  return { name: typeof err, message: String(err) };
}

/** Exponential backoff with equal jitter, so many failing calls do not retry in step. Not Math.random: it may be routed to the checkpoint's generator. */
function backoff(base: number, attempt: number): number {
  const ceiling = Math.min(MAX_RETRY_DELAY, base * 2 ** attempt);
  return ceiling / 2 + (randomInt(0, 1_000_001) / 1_000_000) * (ceiling / 2);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
