/**
 * Signal policy, main-thread half (the background thread's half is signals-worker.ts): what
 * happens when SIGINT, SIGTERM or SIGHUP arrives while checkpoints that handle signals are
 * open. Everything that decides is here: the pending signal, the save handlers, whether the
 * process ends or the user's own listeners decide, the `process.on` fallback where no
 * watcher runs off the main thread, its grace period, and the one way the main thread ends
 * the process on a signal (#exit). Changing what `sync()` does once a signal arrived is a
 * change to `handle()` below.
 *
 * Imports only the other hooks; the background thread is reached through SignalThread.
 */
import { onExit } from './exit.js';
import { planSignalWatch, runtimeName, type SignalPlan } from './signal-watch.js';
import { SIGNALS, type SignalName, type SignalShare, SignalState } from './signals-worker.js';

/** Called on the main thread when a signal arrives; returns once its state is saved. */
export type SignalHandler = (signal: number) => void;

/** Where a checkpoint's notices go (its `log` option). */
export type Log = (line: string) => void;

/** The `once()` steps of an open checkpoint, as the exit on a signal sees them. */
export interface SignalSteps {
  /** Writes the finished records now, blocking. */
  flush(): void;
  /** Steps whose call or record is under way. */
  readonly busy: number;
  /** A call was held back because of the signal: its program waits for the exit. */
  readonly held: boolean;
}

/** What the policy needs of the background thread (writer/background.ts). */
export interface SignalThread {
  /** False once the thread has died, or when it never started. */
  alive(): boolean;
  /** Asks the thread to start (true) or stop (false) watching signals. */
  watch(on: boolean): void;
  /** Raises every due flag, so the next sync() anywhere takes its slow path. */
  raiseDue(): void;
}

const SIGNAL_NAMES = Object.fromEntries(
  Object.entries(SIGNALS).map(([name, n]) => [n, name as SignalName]),
) as Record<number, SignalName>;

/** How long a signal waits for the next step boundary before the process ends without it. */
const GRACE_MS = 1000;
/** How long an open waits for the background thread to watch signals. */
const WATCH_WAIT_MS = 1000;

export class Signals {
  /** Shared with the background thread (its workerData). */
  readonly share: SignalShare = {
    state: new Int32Array(new SharedArrayBuffer(SignalState.LENGTH * 4)),
    graceMs: GRACE_MS,
  };
  /** The background thread's extra flags for a watcher, or why none can work. */
  readonly plan: SignalPlan = planSignalWatch();
  readonly #thread: SignalThread;
  /** Each save handler with the log of its checkpoint. */
  readonly #handlers = new Map<SignalHandler, Log>();
  readonly #steps = new Map<SignalSteps, Log>();
  readonly #fallbackListeners = new Map<SignalName, () => void>();
  #handling = false;
  /** Why no signal watcher runs off the main thread, if none does. */
  #unavailable: string | undefined;
  #noticeSaid = false;
  /** The log of the latest checkpoint that handles signals. */
  #log: Log | undefined;

  constructor(thread: SignalThread) {
    this.#thread = thread;
    this.#unavailable = this.plan.unavailable;
    if (this.plan.unavailable !== undefined && process.versions.bun !== undefined) {
      // #13.3: lets the background thread see when this thread is stuck in a busy loop.
      setInterval(() => Atomics.add(this.#state, SignalState.MAIN_BEAT, 1), 200).unref();
    }
    // A signal caught after the last step boundary (the program was ending anyway) still
    // ends the process as the signal would: with 128 + its number, not 0.
    onExit(() => {
      Atomics.store(this.#state, SignalState.EXITING, 1);
      const signal = this.pending;
      if (signal !== 0 && !this.#handling && !process.exitCode) process.exitCode = 128 + signal;
    });
  }

  get #state(): Int32Array {
    return this.share.state;
  }

  /** Signal number waiting to be handled, or 0. */
  get pending(): number {
    return this.#state[SignalState.SIGNAL]!;
  }

  /** No background thread runs (`reason`): signals are heard through `process.on` only. */
  noThread(reason: string): void {
    this.#unavailable ??= reason;
  }

  /** The notice due at the open of a checkpoint that handles signals, said once per process. */
  openNotice(): string | undefined {
    if (this.#unavailable === undefined || this.#noticeSaid) return undefined;
    this.#noticeSaid = true;
    return unavailableNotice(this.#unavailable);
  }

  /**
   * Calls `handler` on SIGINT/SIGTERM/SIGHUP until the returned function is called. `log`
   * receives its failures, and says it if the thread later finds no way to watch signals.
   */
  onSignal(handler: SignalHandler, log: Log): () => void {
    this.#log = log;
    if (this.#handlers.size === 0) {
      if (this.#unavailable !== undefined) this.#installFallback();
      this.#thread.watch(true);
      // A signal before the watcher runs would end the process unsaved: wait for it (ms).
      if (this.#thread.alive()) Atomics.wait(this.#state, SignalState.WATCHING, 0, WATCH_WAIT_MS);
      // The thread found none, although this side expected one: known now, said at open.
      if (Atomics.load(this.#state, SignalState.WATCHING) === 2) {
        this.#unavailable ??= 'no signal watcher could be started in the background thread';
        this.#installFallback();
      }
    }
    this.#handlers.set(handler, log);
    return () => {
      if (!this.#handlers.delete(handler)) return;
      if (this.#handlers.size === 0) this.#thread.watch(false);
    };
  }

  /**
   * Registers a checkpoint's steps: flushed as soon as a signal arrives and the main thread
   * is idle, and watched by `stepsChanged()`. `log` receives a failed flush. Returns their
   * removal.
   */
  addSteps(steps: SignalSteps, log: Log): () => void {
    this.#steps.set(steps, log);
    return () => this.#steps.delete(steps);
  }

  // The thread found no signal watcher although the main side expected one: async loops
  // only, said through the log of the latest checkpoint that handles signals.
  lost(reason: string): void {
    this.#unavailable = reason;
    this.#installFallback();
    if (this.#noticeSaid) return;
    this.#noticeSaid = true;
    this.#log?.(`resumable-state: ${unavailableNotice(reason)}`);
  }

  /**
   * The main thread is idle (the thread's message got through, or a fallback listener ran):
   * if the user listens to this signal, their listener runs now and decides; the background
   * thread must not end the process.
   */
  arrivedIdle(signal: number): void {
    // Finished steps are consistent records whatever the state is doing: write them now,
    // before the process may end without reaching a step boundary.
    for (const [steps, log] of this.#steps) {
      try {
        steps.flush();
      } catch (err) {
        log(`resumable-state: ${(err as Error).message}`);
      }
    }
    if (this.#userListeners(signal) > 0) Atomics.store(this.#state, SignalState.HANDLED, 2);
    else this.stepsChanged();
  }

  /**
   * True once a signal is ending the process (no listener of the user's own decides
   * otherwise): no new `once()` step may start (#11.6a).
   */
  get stopping(): boolean {
    const signal = this.pending;
    return signal !== 0 && !this.#handling && this.#userListeners(signal) === 0;
  }

  /**
   * #11.6a: while a signal is ending the process, a program whose every running step has
   * ended and that waits at a held `once()` call would only wait for the grace period to
   * run out: end it now with 128 + signal (exit hooks write what is queued). The state is
   * not saved here: the program is between two step boundaries, where it is not consistent.
   */
  stepsChanged(): void {
    if (!this.stopping) return;
    let held = false;
    for (const steps of this.#steps.keys()) {
      if (steps.busy > 0) return;
      held ||= steps.held;
    }
    if (held) this.#exit(this.pending);
  }

  /**
   * Called at a step boundary (sync(), a loop step) once a signal is pending: runs the
   * signal handlers (each saves its state), then exits with 128 + signal, unless the user
   * has listeners of their own for that signal: then they decide. State is saved only at
   * boundaries, where the program says it is consistent; a program that reaches none
   * within the grace period is ended by the background thread with its last save.
   */
  handle(): void {
    const signal = this.pending;
    if (signal === 0 || this.#handling) return;
    this.#handling = true;
    Atomics.store(this.#state, SignalState.HANDLED, 1);
    // Cleared before the saves re-arm their timers, so the background thread does not take
    // the old signal for a new one and raise their flags again.
    Atomics.store(this.#state, SignalState.SIGNAL, 0);
    for (const [handler, log] of [...this.#handlers]) {
      try {
        handler(signal);
      } catch (err) {
        log(`resumable-state: save on signal failed: ${String(err)}`);
      }
    }
    if (this.#userListeners(signal) === 0) this.#exit(signal);
    // The user's own listener takes over (HANDLED stays set, so the background thread
    // leaves the process alone); be ready to save again on the next signal.
    Atomics.store(this.#state, SignalState.HANDLED, 2);
    this.#handling = false;
  }

  // The main thread's one way to end the process on a signal: as the signal would have
  // (128 + its number), with the exit hooks writing what is queued, and the background
  // thread told to leave the process alone.
  #exit(signal: number): never {
    this.#handling = true;
    Atomics.store(this.#state, SignalState.HANDLED, 1);
    process.exit(128 + signal);
  }

  #userListeners(signal: number): number {
    const name = SIGNAL_NAMES[signal];
    if (name === undefined) return 0;
    const ours = this.#fallbackListeners.get(name);
    return process.listeners(name).filter((l) => l !== ours).length;
  }

  // Without a signal watcher off the main thread, signals are seen only when the event
  // loop turns: async loops are covered, busy synchronous loops are not.
  #installFallback(): void {
    if (this.#fallbackListeners.size > 0) return;
    for (const [name, signal] of Object.entries(SIGNALS) as [SignalName, number][]) {
      const listener = () => {
        if (this.#handlers.size === 0 || this.pending !== 0) return;
        Atomics.store(this.#state, SignalState.SIGNAL, signal);
        this.#thread.raiseDue();
        this.arrivedIdle(signal);
        setTimeout(() => {
          if (Atomics.load(this.#state, SignalState.HANDLED) === 0) this.#exit(signal);
        }, GRACE_MS).unref();
      };
      this.#fallbackListeners.set(name, listener);
      process.on(name, listener);
    }
  }
}

function unavailableNotice(reason: string): string {
  return `signals in busy synchronous loops are not available on ${runtimeName()}: ${reason}; async loops still save on SIGTERM/SIGINT`;
}
