/**
 * The step log of a checkpoint (#16.2): where the records of `once()` steps go, and how long
 * they are kept. Records are appended in batches (JournalWriter) to a journal numbered by its
 * epoch; every save rotates to a new journal, and its snapshot's `stepsFrom` names the first
 * journal it does not hold. Journals are dropped once `keep` durable snapshots hold them (a
 * fold). A store without a journal saves the whole checkpoint instead of appending.
 *
 * The log holds its checkpoint weakly: the journal writer's exit hook holds the log until the
 * process ends, and a checkpoint that is never closed must still be collectable.
 */
import { parseJournal, type StepRecord } from './journal.js';
import { type JournalSink, JournalWriter } from './journal-writer.js';
import { type OnceOptions, type StepGate, Steps } from './steps.js';
import type { CheckpointStore, JournalFile } from './store/store.js';
import type { Background } from './writer/background.js';
import type { BackgroundWriter } from './writer/writer.js';

/** The steps a snapshot holds. */
export interface SavedSteps {
  steps?: Map<string, StepRecord> | undefined;
  /** First journal not folded into `steps`. */
  stepsFrom?: number | undefined;
}

/** What a step log is made of. Nothing here may hold the checkpoint (see above). */
export interface StepLogSettings {
  name: string;
  store: CheckpointStore;
  /** Journals are kept back to the oldest of the last `keep` durable snapshots. */
  keep: number;
  batchDelayMs: number;
  /** Ignore saved steps (not deleted: a later save supersedes them). */
  clean: boolean;
  /** `once()` options of the checkpoint. */
  defaults: Required<OnceOptions>;
  /** Writes snapshots in the background: which of them have landed. */
  writer: BackgroundWriter | undefined;
  /** Tells steps that a signal is ending the process. */
  background: Background | undefined;
  /** Where a journal failure at exit is said (the checkpoint's `log`, #16.5). */
  log: (line: string) => void;
}

/** The checkpoint, held weakly, and how it saves itself (for stores without a journal). */
export interface StepLogOwner<C extends object> {
  ref: WeakRef<C>;
  save(owner: C): void;
}

export class StepLog<C extends object = object> {
  readonly steps: Steps;
  readonly #settings: StepLogSettings;
  readonly #owner: StepLogOwner<C>;
  /** Journal that new records go to, and its number. */
  #file: JournalFile | undefined;
  #epoch: number;
  /** Journals replaced by a rotation, closed once no append is in flight. */
  #retired: JournalFile[] = [];
  /** `stepsFrom` of durable snapshots, oldest first; journals before the one-but-last go. */
  #folds: number[];
  /** Folds handed to the background writer, applied once their write has landed. */
  #pendingFolds: { seq: number; from: number }[] = [];

  /**
   * Opens the log: the steps of `saved` (a snapshot), then the journals from its `stepsFrom`
   * on, replayed in order. `notice` is told of records dropped from a torn journal.
   */
  constructor(
    settings: StepLogSettings,
    saved: SavedSteps | undefined,
    owner: StepLogOwner<C>,
    notice: (line: string) => void,
  ) {
    this.#settings = settings;
    this.#owner = owner;
    const { name, store, clean } = settings;
    const records = new Map<string, StepRecord>();
    let from = 0;
    if (!clean) {
      for (const [key, record] of saved?.steps ?? []) records.set(key, record);
      from = saved?.stepsFrom ?? 0;
    }
    let last = from - 1;
    for (const stored of store.journal?.read(name) ?? []) {
      last = Math.max(last, stored.epoch);
      if (clean || stored.epoch < from) continue;
      const parsed = parseJournal(stored.bytes);
      // Later records win (a retry that succeeded after a failure).
      for (const record of parsed.records) records.set(record.key, record);
      if (parsed.dropped !== undefined) {
        const n = parsed.records.length;
        notice(
          `dropped ${parsed.dropped} in ${stored.location} (${n} record${n === 1 ? '' : 's'} before it kept)`,
        );
      }
    }
    // Journal numbers follow the clock, so a new journal always sorts after every journal
    // and every snapshot's `stepsFrom` written before, whatever was cleaned or cleared.
    this.#epoch = nextEpoch(last);
    this.#folds = [from];
    const writer = new JournalWriter(() => this.#sink(), settings.batchDelayMs, {
      failed: () => this.#retire(),
      idle: () => this.#closeRetired(),
      log: settings.log,
    });
    this.steps = new Steps(records, writer, settings.defaults, gateOf(settings.background));
  }

  get writer(): JournalWriter {
    return this.steps.writer;
  }

  /**
   * Starts a new journal for records from now on, before a snapshot is taken; returns its
   * number (the snapshot's `stepsFrom`), or undefined for a store without a journal.
   */
  rotate(): number | undefined {
    this.settle();
    if (this.#settings.store.journal === undefined) return undefined;
    this.#retire();
    this.#closeRetired();
    return this.#epoch;
  }

  /** A snapshot holding the steps before journal `from` was handed to the writer as `seq`. */
  submitted(seq: number, from: number): void {
    this.#pendingFolds.push({ seq, from });
  }

  /**
   * A snapshot holding every step before journal `from` is durable. Journals are kept back
   * to the oldest of the last `keep` such snapshots, so a fallback to an older generation
   * still finds its journals.
   */
  folded(from: number): void {
    this.#folds = [...this.#folds, from].slice(-this.#settings.keep);
    this.#settings.store.journal?.drop(this.#settings.name, this.#folds[0]!);
  }

  // Only the newest background write is known to have landed; older queued ones may have
  // been superseded or have failed, so they do not count (their journals stay longer).
  /** Applies the folds of background writes that have landed. */
  settle(): void {
    if (this.#pendingFolds.length === 0) return;
    const written = this.#settings.writer?.lastResult()?.seq ?? 0;
    let landed: number | undefined;
    while (this.#pendingFolds.length > 0 && this.#pendingFolds[0]!.seq <= written) {
      const fold = this.#pendingFolds.shift()!;
      if (fold.seq === written) landed = fold.from;
    }
    if (landed !== undefined) this.folded(landed);
  }

  /** Forgets every step and fold (`clear()`): queued records are dropped, files closed. */
  clear(): void {
    this.writer.discard();
    this.steps.clear();
    this.#retire();
    this.#closeRetired();
    this.#folds = [];
    this.#pendingFolds = [];
  }

  /** Flushes what is queued and closes the files; throws a failed append not reported yet. */
  close(): void {
    try {
      this.writer.close();
    } finally {
      this.#retire();
      this.#closeRetired();
    }
  }

  /** The journal file records go to now; without a journal, a save holds them instead. */
  #sink(): JournalSink {
    const { store, name } = this.#settings;
    if (store.journal === undefined) {
      const save = () => {
        const owner = this.#owner.ref.deref();
        if (owner !== undefined) this.#owner.save(owner);
      };
      return { append: async () => save(), appendSync: save };
    }
    this.#file ??= store.journal.create(name, this.#epoch);
    return this.#file;
  }

  /** New records go to a new journal from now on (after a save, or a failed append). */
  #retire(): void {
    if (this.#file === undefined) return;
    this.#retired.push(this.#file);
    this.#file = undefined;
    this.#epoch = nextEpoch(this.#epoch);
  }

  // A file is closed only when no append is in flight: its descriptor may be in use.
  #closeRetired(): void {
    if (!this.writer.idle) return;
    for (const file of this.#retired.splice(0)) file.close();
  }
}

/** How steps hear of a signal ending the process; built here so it holds no checkpoint. */
function gateOf(background: Background | undefined): StepGate | undefined {
  if (background === undefined) return undefined;
  const { signals } = background;
  return {
    get closed() {
      return signals.stopping;
    },
    changed: () => signals.stepsChanged(),
  };
}

/** The next journal number: the clock in ms, or one more than `last` if that is later. */
function nextEpoch(last: number): number {
  return Math.max(Date.now(), last + 1);
}
