/**
 * class Checkpoint: the public API, wiring the parts that each live in their own module:
 * options (options.ts), naming, the store, the background writer and its thread, the step
 * log of `once()` (step-log.ts), the load policy of `restore()` (load-policy.ts), the
 * envelope a save stores (envelope.ts), save metadata (save-history.ts), tracked objects
 * (tracked.ts), loops, random and signals.
 *
 * Over 400 lines (#16.2) because it is the whole public surface: about 100 of its lines are
 * the TSDoc of its 17 public members, and each method body left is the order in which the
 * parts are called (lifecycle, save, restore), which reads best in one place.
 */

import { type CheckpointMeta, packCheckpoint } from './codec/container.js';
import { encodeState } from './codec/serializer.js';
import { formatAgeOf } from './durations.js';
import type { Envelope, LoadedCheckpoint } from './envelope.js';
import {
  CheckpointClosedError,
  CheckpointError,
  CorruptCheckpointError,
  SerializationError,
} from './errors.js';
import { canonicalKey, hashKey } from './key.js';
import { loadCheckpoint } from './load-policy.js';
import {
  each as eachLoop,
  type LoopHost,
  loopPositions,
  loopProgress,
  range as rangeLoop,
  restorePositions,
} from './loops.js';
import { installMathRandom } from './math-random.js';
import { defaultDir, deriveName, findCaller } from './naming.js';
import {
  type CheckpointOptions,
  type ResolvedOptions,
  resolveOptions,
  resolveStepOptions,
} from './options.js';
import { breakProgressLine, createProgress } from './progress.js';
import { Random } from './random.js';
import { SaveHistory, type SaveIdentity } from './save-history.js';
import { type Shard, shardName } from './shard.js';
import { type SavedSteps, StepLog } from './step-log.js';
import type { OnceOptions, StepStats } from './steps.js';
import { fileStore } from './store/file.js';
import type { CheckpointStore } from './store/store.js';
import { targetOf } from './store/thread-target.js';
import { type Trackable, TrackedObjects } from './tracked.js';
import { Background } from './writer/background.js';
import { estimateStateBytes } from './writer/staging.js';
import { BackgroundWriter } from './writer/writer.js';

/** Metadata of a stored checkpoint: times, save count, sizes, source. */
export type CheckpointInfo = CheckpointMeta;

export type { Trackable } from './tracked.js';

/** Background writers of open checkpoints by location: a new instance waits for them. */
const writersByLocation = new Map<string, Set<BackgroundWriter['pending']>>();

function settleWritesTo(location: string): void {
  for (const pending of writersByLocation.get(location) ?? []) pending.waitSync(30_000);
}

/**
 * A named, durable snapshot of a computation's state. Create it at the start of a
 * function, call `restore(initial)` before the loop, `sync()` or `save()` in it.
 *
 * @example
 * const chp = new Checkpoint();
 * const s = chp.restore({ primes: [2], candidate: 2 }); // s: { primes: number[]; candidate: number }
 * while (…) { …; chp.sync(); }
 * chp.save();
 *
 * @typeParam T - The state's type. Left out, `restore()` infers it from `initial`; given
 * (`new Checkpoint<State>()`), `restore()` requires a `T` and returns a `T`, and
 * `save(state)`/`sync(state)` accept only a `T`.
 */
export class Checkpoint<T extends object = object> {
  /** Checkpoint name (derived from the calling function unless given). */
  readonly name: string;
  /** Where it is stored: the latest generation's file path for the default store. */
  readonly location: string;
  /** Seeded generator; its state is saved with every save and restored by `restore()`. */
  readonly random: Random;
  /** This task's shard of an array job (option `shard`), if any. */
  readonly shard: Shard | undefined;

  readonly #options: ResolvedOptions;
  readonly #store: CheckpointStore;
  readonly #keyText: string | undefined;
  /** Raised (to 1) by the background thread when a sync() is due or a signal arrived. */
  readonly #due = new Int32Array(new SharedArrayBuffer(4));
  readonly #tracked: TrackedObjects;
  #background: Background | undefined;
  #writer: BackgroundWriter | undefined;
  #timerId = 0;
  #state: T | undefined;
  #restored = false;
  /** Metadata of the last save or load, and of the next save. */
  readonly #history: SaveHistory;
  #releaseLock: (() => void) | undefined;
  #stopSignals: (() => void) | undefined;
  #closed = false;
  /** What `range`/`each` loops use: their saved positions, `sync()` and the progress display. */
  readonly #loops: LoopHost;
  /** Puts `Math.random` back (option `mathRandom`). */
  #uninstallMathRandom: (() => void) | undefined;
  /** `once()` steps and where their records go, loaded on first use. */
  #stepLog: StepLog<Checkpoint<object>> | undefined;
  /** The saved steps of the snapshot `restore()` loaded, until `#steps` takes them. */
  #savedSteps: SavedSteps | undefined;
  #restoreCalled = false;
  /** True once restore() returned the live state: a second call would drop its changes. */
  #restoreReturned = false;
  /** A snapshot loaded by `once()` before `restore()` was called, kept for it (null: none). */
  #loadedEarly: LoadedCheckpoint | null | undefined;
  #unwatchSteps: (() => void) | undefined;

  constructor(options?: CheckpointOptions) {
    this.#options = resolveOptions(options);
    const caller = findCaller(new.target ?? Checkpoint);
    let name = this.#options.name ?? deriveName(caller);
    if (this.#options.key !== undefined) {
      this.#keyText = canonicalKey(this.#options.key);
      name = `${name}.${hashKey(this.#keyText)}`;
    }
    this.shard = this.#options.shard;
    if (this.shard !== undefined) name = shardName(name, this.shard);
    this.name = name;
    const source: SaveIdentity['source'] = {};
    if (caller.file !== undefined) source.file = caller.file;
    if (caller.functionName !== undefined) source.function = caller.functionName;
    const { version, shard } = this.#options;
    this.#history = new SaveHistory({ name, source, key: this.#keyText, version, shard });
    this.#store = this.#options.store ?? fileStore(this.#options.dir ?? defaultDir(caller.file));
    this.location = this.#store.locate(name);
    this.random = new Random(this.#options.seed);
    this.#tracked = new TrackedObjects(this.random);
    this.#loops = {
      loops: new Map(),
      sync: () => this.sync(),
      progress: this.#options.progress ? createProgress(process.stderr) : undefined,
      shard: this.shard,
    };
    if (!this.#options.enabled) return;

    this.#releaseLock = this.#store.lock?.(name, {
      wait: this.#options.lockWaitMs,
      notice: (line) => this.#notice(line),
    });
    // Another instance of this process may still be writing here: let it land first.
    settleWritesTo(this.location);
    this.#store.cleanup?.(name);
    this.#background = Background.get();
    this.#timerId = this.#background.newId();
    const target = targetOf(this.#store);
    if (target !== undefined) {
      this.#writer = new BackgroundWriter(
        this.#background,
        target,
        this.#due,
        name,
        this.#options.log,
      );
      let writers = writersByLocation.get(this.location);
      if (writers === undefined) writersByLocation.set(this.location, (writers = new Set()));
      writers.add(this.#writer.pending);
    }
    this.#arm();
    // The first sync() takes its slow path once, to say if there is no state (#14.4).
    Atomics.compareExchange(this.#due, 0, 0, CHECK_STATE);
    if (this.#options.signals) {
      this.#stopSignals = this.#background.signals.onSignal(
        Checkpoint.#signalHandler(new WeakRef(this)),
        this.#options.log,
      );
    }
    for (const line of this.#background.openNotices(this.#options.signals)) this.#notice(line);
    // Last: nothing after it may throw, or Math.random would stay routed to a dead checkpoint.
    if (this.#options.mathRandom) this.#uninstallMathRandom = installMathRandom(this.random.next);
  }

  /** True when `restore()` loaded saved state. */
  get restored(): boolean {
    return this.#restored;
  }

  /** Metadata of the loaded or last saved checkpoint. */
  get info(): CheckpointInfo | undefined {
    return this.#history.info(this.#writer?.lastResult());
  }

  /** Saves so far (the signal notice names it). */
  get #saves(): number {
    return this.#history.saves;
  }

  /**
   * Returns the saved state (keys missing from it filled from `initial`), or `initial`
   * itself when nothing valid is saved. The returned object is the tracked state: later
   * `save()`/`sync()` calls store it. Call it once per checkpoint: a second call throws a
   * `TypeError` (it would drop the live state's unsaved changes).
   *
   * Its type is inferred from `initial` unless the class was given one (`Checkpoint<State>`),
   * which then wins, so `restore({ items: [] })` gives `State['items']`, not `never[]` (#12.2).
   */
  restore<S extends T>(initial: S): object extends T ? S : T;
  restore(initial: T): T {
    if (this.#options.enabled) {
      this.#throwIfClosed('restore');
      // #14.4: a second restore() would reload the last save over the live state's changes.
      if (this.#restoreReturned) {
        throw new TypeError(
          `restore() was already called on checkpoint "${this.name}": keep using the object it returned (it is the live state); to replace the state, pass the new object to save(state) or sync(state)`,
        );
      }
    }
    const state = this.#restoreFirst(initial);
    // Every sync() is due from now on: its staging buffer must be ready at once (#17.2).
    if (this.#options.intervalMs === 0) this.#prepareStaging();
    this.#restoreReturned = true;
    return state;
  }

  #restoreFirst(initial: T): T {
    if (typeof initial !== 'object' || initial === null) {
      throw new TypeError(
        `Expected \`initial\` to be an object, got \`${String(initial)}\` (${initial === null ? 'null' : typeof initial})`,
      );
    }
    this.#state = initial;
    this.#restoreCalled = true;
    if (!this.#options.enabled || this.#options.clean) return initial;
    const early = this.#loadedEarly;
    this.#loadedEarly = undefined;
    const loaded = early === undefined ? this.#load() : (early ?? undefined);
    if (loaded === undefined) return initial;
    const { meta, envelope } = loaded;
    const state = envelope.state as T;
    if (isPlainObject(state) && isPlainObject(initial)) {
      for (const key of Object.keys(initial)) {
        if (!Object.hasOwn(state, key))
          (state as Record<string, unknown>)[key] = initial[key as keyof T];
      }
    }
    try {
      this.random.setState(envelope.random);
      restorePositions(this.#loops, envelope.loops);
    } catch (err) {
      // Intact bytes (the checksum held) but not a state this version can continue from.
      throw new CorruptCheckpointError(
        `Checkpoint file ${this.location} could not be restored: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (this.#stepLog === undefined) {
      this.#savedSteps = { steps: envelope.steps, stepsFrom: envelope.stepsFrom };
    }
    this.#tracked.restore(envelope.tracked ?? {});
    this.#state = state;
    this.#restored = true;
    this.#history.loaded(meta);
    this.#notice(
      `resumed "${this.name}" from save #${meta.saves} of ${formatAgeOf(meta.savedAt)} ago (${this.location})`,
    );
    return state;
  }

  /** Writes the state now; durable when it returns. */
  save(state?: T): void {
    if (state !== undefined) this.#state = state;
    if (!this.#options.enabled) return;
    this.#throwIfClosed('save');
    try {
      this.#write(true, 'save');
    } catch (err) {
      throw fromCaller(err, Checkpoint.prototype.save);
    }
  }

  /**
   * Writes the state if `interval` has passed since the last write (or since creation);
   * otherwise returns at once (a memory load, no clock read). True if it saved. Throws, like
   * `save()`, when there is no state yet (no `restore()` and no `state` argument).
   */
  sync(state?: T): boolean {
    if (state !== undefined) this.#state = state;
    if (this.#due[0] === 0) return false;
    return this.#syncDue();
  }

  #syncDue(): boolean {
    if (!this.#options.enabled) return false;
    // Closed: the lock is released, so nothing may be written any more.
    this.#throwIfClosed('sync');
    // The flag was raised at creation only to look at the state once (#14.4): not due yet.
    if (Atomics.compareExchange(this.#due, 0, CHECK_STATE, 0) === CHECK_STATE) {
      if (this.#state === undefined) throw nothingToSave('sync');
      this.#prepareStaging();
      return false;
    }
    const background = this.#background!;
    if (background.signals.pending !== 0) {
      background.signals.handle();
      return false;
    }
    // Without the background thread the flag stays up: the clock says if a save is due.
    if (!background.isDue(this.#timerId)) return false;
    this.#throwWriterError();
    try {
      this.#write(false, 'sync');
    } catch (err) {
      throw fromCaller(err, Checkpoint.prototype.sync);
    }
    return true;
  }

  /**
   * #17.2: allocates the staging buffer of sync() before the first one is due (the first
   * copy into fresh memory paused 48 ms on S1, later ones 17 ms): at restore() when every
   * sync() is due, else at the first sync() call, which proves sync() is used (a program
   * that only calls save() keeps no such buffer). Sized from the restored save, or from the
   * typed arrays of a fresh state.
   */
  #prepareStaging(): void {
    if (this.#writer === undefined || this.#state === undefined) return;
    const saved = this.#restored ? (this.info?.rawBytes ?? 0) : 0;
    this.#writer.prepare(saved > 0 ? saved : estimateStateBytes(this.#state));
  }

  // #14.4: every use of a closed checkpoint says so, with what to do instead.
  #throwIfClosed(method: string): void {
    if (!this.#closed) return;
    throw new CheckpointClosedError(
      `Checkpoint "${this.name}" is closed, so ${method}() cannot run: it no longer owns its files. Open a new Checkpoint with the same name to continue from what it saved`,
    );
  }

  /** Resolves when every started save is durable; rejects with the error of a failed one. */
  async flush(): Promise<void> {
    await this.#stepLog?.writer.drain();
    await this.#writer?.wait();
    this.#throwWriterError();
  }

  #throwWriterError(): void {
    const error = this.#writer?.takeError();
    if (error !== undefined) throw error;
  }

  /** Deletes this checkpoint, every generation of it. */
  clear(): void {
    if (!this.#options.enabled) return;
    this.#throwIfClosed('clear');
    this.#store.remove(this.name);
    this.#loops.loops.clear();
    this.#stepLog?.clear();
    this.#savedSteps = undefined;
    this.#loadedEarly = undefined;
    this.#history.clear();
  }

  /**
   * Waits for saves in flight, stops timers and signal handling, releases the lock.
   * Throws the error of a failed background save not reported yet. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#uninstallMathRandom?.();
    this.#uninstallMathRandom = undefined;
    this.#stopSignals?.();
    this.#unwatchSteps?.();
    let journalError: unknown;
    try {
      this.#stepLog?.close();
    } catch (err) {
      journalError = err;
    }
    if (this.#background !== undefined) this.#background.disarm(this.#timerId);
    // The next sync() takes its slow path, which says the checkpoint is closed.
    Atomics.store(this.#due, 0, 1);
    if (this.#writer !== undefined) {
      if (!this.#writer.close()) {
        this.#notice(`a save of "${this.name}" was still being written when it closed`);
      }
      writersByLocation.get(this.location)?.delete(this.#writer.pending);
    }
    this.#stepLog?.settle();
    this.#releaseLock?.();
    if (journalError !== undefined) throw journalError;
    this.#throwWriterError();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Runs `fn` the first time `key` is seen, records its result durably, and from then on,
   * in this run and every later one, returns the recorded result without calling `fn`: a
   * paid or slow call (an API request, a conversion) is never made twice once it
   * succeeded. Calls with a key already running share that run. A step that throws is
   * recorded as failed (`failed()`), retried per `retries`, and run again by a later call
   * or run. Results are stored like the state (same types), and should not be changed.
   *
   * @example
   * const summary = await chp.once(`summary:${doc.id}`, () => llm.summarize(doc.text));
   */
  once<R>(key: string, fn: () => R | Promise<R>, options?: OnceOptions): Promise<R> {
    try {
      if (typeof key !== 'string' || key === '') {
        throw new TypeError(`Expected \`key\` to be a non-empty string, got ${show(key)}`);
      }
      if (typeof fn !== 'function') {
        throw new TypeError(`Expected \`fn\` to be a function, got ${show(fn)}`);
      }
      const checked = resolveStepOptions(options ?? {}, 'options.');
      if (!this.#options.enabled) return Promise.resolve().then(fn);
      this.#throwIfClosed('once');
      const steps = this.#stepsReady();
      steps.writer.takeError();
      return steps.once(key, fn, checked);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Keys of steps whose last attempt threw and that are not running now. */
  failed(): string[] {
    if (!this.#options.enabled) return [];
    return this.#stepsReady().failed();
  }

  /** How many steps are done (result recorded), failed (last attempt threw) and running. */
  stats(): StepStats {
    if (!this.#options.enabled) return { done: 0, failed: 0, pending: 0 };
    return this.#stepsReady().stats();
  }

  /** The steps: saved ones (snapshot, then journals replayed in order), on first use. */
  #stepsReady(): StepLog['steps'] {
    if (this.#stepLog !== undefined) return this.#stepLog.steps;
    if (this.#store.journal === undefined && !this.#restoreCalled) {
      // Without a journal, steps are saved with the state, which must be known first.
      throw new CheckpointError(
        `once() needs restore(initial) first on a store without a journal (${this.location}): its steps are saved with the state`,
      );
    }
    let saved = this.#savedSteps;
    if (!this.#options.clean && !this.#restoreCalled) {
      // once() before restore(): load now, and keep the snapshot for restore().
      this.#loadedEarly ??= this.#load() ?? null;
      saved = this.#loadedEarly?.envelope;
    }
    this.#savedSteps = undefined;
    const o = this.#options;
    const settings = {
      name: this.name,
      store: this.#store,
      keep: o.keep,
      batchDelayMs: o.batchDelayMs,
      clean: o.clean,
      defaults: { durable: o.durable, retries: o.retries, retryDelay: o.retryDelayMs },
      writer: this.#writer,
      background: this.#background,
      log: o.log,
    };
    // #16.2: held weakly, so an unclosed checkpoint that ran steps can be freed.
    const owner = { ref: new WeakRef<Checkpoint<object>>(this), save: Checkpoint.#saveForSteps };
    this.#stepLog = new StepLog(settings, saved, owner, (line) => this.#notice(line));
    this.#unwatchSteps = this.#background?.signals.addSteps(this.#stepLog.steps, this.#options.log);
    return this.#stepLog.steps;
  }

  /** How the step log saves a checkpoint whose store has no journal: the state holds the steps. */
  static #saveForSteps(chp: Checkpoint<object>): void {
    chp.#write(true);
  }

  /**
   * Like Python's `range`: `range(end)` yields `0 … end - 1`, `range(start, end, step)` yields
   * `start + k * step` while before `end` (`step` may be negative, not 0; `end` may be
   * `Infinity`). Resumes at the first item not done by earlier runs, and calls `sync()` each
   * time an item is done, so `for (const i of chp.range(n)) work(i)` needs no other line.
   * A loop is known by where it is called (file, line and column; under the enclosing loop's
   * item for nested ones): call `restore()` before it, and keep the code above it unchanged
   * between runs. `break` or an exception leave the current item not done.
   */
  range(start: number, end?: number, step?: number): Iterable<number> {
    if (this.#options.enabled) this.#throwIfClosed('range');
    return rangeLoop(this.#loops, this.range, start, end, step);
  }

  /**
   * Iterates `items` like `for...of` (`for await` for an async iterable: streams, pages of an
   * API), resuming at the first item not done by earlier runs and calling `sync()` each time
   * an item is done. Arrays are indexed; other iterables are consumed and the items done
   * before discarded, so they must yield the same items in the same order on every run.
   */
  each<I>(items: Iterable<I>): Iterable<I>;
  each<I>(items: AsyncIterable<I>): AsyncIterable<I>;
  each<I>(items: Iterable<I> | AsyncIterable<I>): Iterable<I> | AsyncIterable<I> {
    if (this.#options.enabled) this.#throwIfClosed('each');
    return eachLoop(this.#loops, this.each, items);
  }

  /**
   * Adds another object's state (a generator, a simulation engine) to every save and
   * restores it: at once if `restore()` already ran, else when it does.
   */
  track<S>(name: string, obj: Trackable<S>): void {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`Expected \`name\` to be a non-empty string, got \`${String(name)}\``);
    }
    if (typeof obj?.getState !== 'function' || typeof obj.setState !== 'function') {
      throw new TypeError('Expected `obj` to have getState() and setState(state) methods');
    }
    if (this.#options.enabled) this.#throwIfClosed('track');
    this.#tracked.add(name, obj);
  }

  #arm(): void {
    if (this.#background === undefined) return;
    const interval = this.#options.intervalMs;
    if (interval === 0) {
      this.#due[0] = 1;
      return;
    }
    this.#due[0] = 0;
    this.#background.arm(this.#timerId, this.#due, interval);
  }

  #envelope(stepsFrom: number | undefined): Envelope {
    const envelope: Envelope = {
      state: this.#state as T,
      random: this.random.getState(),
      tracked: this.#tracked.states(),
      loops: loopPositions(this.#loops),
    };
    if (this.#stepLog !== undefined) {
      envelope.steps = this.#stepLog.steps.records;
      if (stepsFrom !== undefined) envelope.stepsFrom = stepsFrom;
    } else if (this.#savedSteps?.steps !== undefined) {
      // Steps restored but not used in this run: carried over as they were.
      envelope.steps = this.#savedSteps.steps;
      if (this.#savedSteps.stepsFrom !== undefined) envelope.stepsFrom = this.#savedSteps.stepsFrom;
    }
    return envelope;
  }

  /** Snapshots the state and writes it: in the background unless `durable`, or without a writer. */
  #write(durable: boolean, method = 'save'): void {
    if (this.#state === undefined) throw nothingToSave(method);
    if (!durable) this.#throwWriterError();
    // The folder may have been deleted or replaced under us (#11.3): never write into one
    // another process owns; take the lock again if its file is gone.
    if (this.#store.checkLock?.(this.name)) {
      this.#notice(
        `the lock of "${this.name}" was gone (its folder deleted or replaced?); took it again, saves go on in ${this.location}`,
      );
    }
    const stepsFrom = this.#stepLog?.rotate();
    const encoded = encodeState(this.#envelope(stepsFrom) as unknown as Record<string, unknown>);
    const meta = this.#history.next(this.random.seed, loopProgress(this.#loops));
    const { compression, keep } = this.#options;
    const writer = this.#writer;
    if (writer !== undefined && !durable && this.#background!.alive) {
      const seq = writer.submit({ name: this.name, keep, compression, meta }, encoded);
      if (stepsFrom !== undefined) this.#stepLog!.submitted(seq, stepsFrom);
      this.#history.submitted(meta, seq);
    } else {
      // A durable save blocks anyway, so it writes from the live state on this thread,
      // skipping the snapshot copy, once earlier background writes have landed (order).
      // An earlier background failure does not stop this save: it is said, and this save
      // (which supersedes it) reports its own failure, if any.
      if (writer !== undefined) {
        writer.waitSync(Number.POSITIVE_INFINITY);
        this.#stepLog?.settle();
        const earlier = writer.takeError();
        if (earlier !== undefined)
          this.#notice(`an earlier background save failed: ${earlier.message}`);
      }
      const release = writer?.holdPrefault(); // #17.1
      try {
        const parts = packCheckpoint(meta, encoded, compression, {
          deferChecksum: this.#store.sealsChecksum === true, // #17.1
        });
        this.#store.write(this.name, parts, keep);
        if (stepsFrom !== undefined) this.#stepLog!.folded(stepsFrom);
        this.#history.written(parts.meta);
      } finally {
        release?.();
      }
    }
    this.#arm();
  }

  // Built outside the constructor so the closure holds only the WeakRef: closures made in
  // the constructor share its scope, which holds `this`. A checkpoint that is never closed
  // (the seed's style) can then still be freed.
  static #signalHandler(ref: WeakRef<Checkpoint<object>>): () => void {
    return () => {
      const chp = ref.deref();
      if (chp !== undefined) chp.#saveOnSignal();
    };
  }

  #saveOnSignal(): void {
    if (this.#state === undefined || this.#closed) return;
    this.#write(true);
    this.#notice(`saved "${this.name}" on signal (save #${this.#saves})`);
  }

  /** The snapshot to continue from, once this process's own writes here have landed. */
  #load(): LoadedCheckpoint | undefined {
    settleWritesTo(this.location);
    return loadCheckpoint({
      name: this.name,
      key: this.#keyText,
      location: this.location,
      store: this.#store,
      options: this.#options,
      notice: (line) => this.#notice(line),
    });
  }

  #notice(message: string): void {
    breakProgressLine();
    this.#options.log(`resumable-state: ${message}`);
  }
}

/** Value of the due flag that makes the first sync() look at the state (never due by itself). */
const CHECK_STATE = 2;

function nothingToSave(method: string): TypeError {
  return new TypeError(
    `Nothing to save: call restore(initial) first, or pass the state to ${method}(state)`,
  );
}

/**
 * #14.4: a SerializationError thrown deep in the encoder shows, with Node's 10 stack frames,
 * only encoder frames; its stack is taken again at the public method, so it starts at the
 * user's own line.
 */
function fromCaller(err: unknown, entry: (...args: never[]) => unknown): unknown {
  if (err instanceof SerializationError) Error.captureStackTrace(err, entry);
  return err;
}

function show(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : `\`${String(value)}\` (${typeof value})`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === Object.prototype || proto === null;
}
