/**
 * Background-thread half of signal handling (the main-thread half, with the policy, is
 * hooks/signals.ts). A `process.on('SIGTERM')` listener never runs while the main thread is
 * busy in a synchronous loop; the background thread has its own event loop, so a watcher
 * started here (hooks/signal-watch.ts) fires at once. It records the signal in the shared
 * state, raises every due flag so the next `sync()` or loop step sees it, and tells an idle
 * main thread. If the main thread acts on it within the grace period, this half does
 * nothing more; otherwise it ends the process as the signal would have without us.
 *
 * Also holds the layout both halves share. Imports only signal-watch.ts and
 * bun-busy-signals.ts: it runs inside the worker bundle (scripts/build-worker.mjs).
 */
import { defaultSignalsWhileBusy } from './bun-busy-signals.js';
import { type SignalWatch, watchSignals } from './signal-watch.js';

/** Signals that save and exit, with their numbers on Linux and macOS. */
export const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
export type SignalName = keyof typeof SIGNALS;

/** Indexes in the shared signal state (Int32), written by both halves. */
export const SignalState = {
  /** Signal number received by the background thread, 0 if none. */
  SIGNAL: 0,
  /**
   * Set by the main thread once it acts on that signal (1), or leaves it to the user's own
   * listeners (2); either way the background thread does not end the process itself.
   */
  HANDLED: 1,
  /** Set once the main thread's exit hooks have run: a signal now kills as it would. */
  EXITING: 2,
  /** 1 while the background thread watches signals, 2 when it found no way to. */
  WATCHING: 3,
  /**
   * Counted up by the main thread every 200 ms where busy loops hear no signal (Bun): the
   * background thread tells a busy main thread from an idle one (./bun-busy-signals.ts).
   */
  MAIN_BEAT: 4,
  /** Length of the state array. */
  LENGTH: 5,
} as const;

/** What the main thread hands to the background thread (in its workerData). */
export interface SignalShare {
  state: Int32Array;
  /** How long to wait for the main thread to act on a signal before ending the process. */
  graceMs: number;
}

/** What the background thread does besides watching: its timers, its messages. */
export interface WorkerSignalEvents {
  /** A signal arrived: raise every due flag, so the next sync() anywhere sees it. */
  arrived(signal: number): void;
  /** Tell an idle main thread (it lets the user's own listeners decide). */
  tell(signal: number): void;
  /** No watcher could be started: the main thread falls back to `process.on`. */
  unavailable(reason: string): void;
}

/** The background thread's side: started and stopped as checkpoints ask for signals. */
export class WorkerSignals {
  #watch: SignalWatch | undefined;
  #busyFallback = false;

  constructor(
    readonly share: SignalShare,
    readonly events: WorkerSignalEvents,
  ) {}

  /** A signal number waiting for the main thread, or 0. */
  get pending(): number {
    return Atomics.load(this.share.state, SignalState.SIGNAL);
  }

  start(): void {
    if (this.#watch !== undefined) return;
    try {
      this.#watch = watchSignals(SIGNALS, (signal) => this.#onSignal(signal));
      this.#settle(SignalState.WATCHING, 1);
    } catch (err) {
      this.events.unavailable((err as Error).message);
      this.#settle(SignalState.WATCHING, 2);
      // #13.3: Bun: at least a busy loop still ends on SIGTERM/SIGINT/SIGHUP.
      // Started once: it runs until the process ends.
      if (process.versions.bun !== undefined && !this.#busyFallback) {
        this.#busyFallback = true;
        defaultSignalsWhileBusy(
          () => Atomics.load(this.share.state, SignalState.MAIN_BEAT),
          Object.values(SIGNALS),
        );
      }
    }
  }

  stop(): void {
    this.#watch?.stop();
    this.#watch = undefined;
    Atomics.store(this.share.state, SignalState.WATCHING, 0);
  }

  /** Sets `state[index]` and wakes the main thread waiting on it. */
  #settle(index: number, value: number): void {
    Atomics.store(this.share.state, index, value);
    Atomics.notify(this.share.state, index);
  }

  #onSignal(signal: number): void {
    const { state, graceMs } = this.share;
    // The main thread is exiting: nobody will act on it, so let it kill as it would have.
    if (Atomics.load(state, SignalState.EXITING) !== 0) {
      this.#end(signal);
      return;
    }
    if (Atomics.load(state, SignalState.SIGNAL) !== 0) return;
    Atomics.store(state, SignalState.SIGNAL, signal);
    this.events.arrived(signal);
    this.events.tell(signal);
    // If the main thread never reaches a sync() or an idle moment, end the process anyway,
    // as the signal would have without us: default action first, SIGKILL as the last resort.
    setTimeout(() => {
      if (Atomics.load(state, SignalState.HANDLED) !== 0) return;
      this.#end(signal);
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), graceMs).unref();
    }, graceMs);
  }

  // This half's one way to end the process: stop watching, so the signal's default action
  // (which our watcher would otherwise catch) takes the process.
  #end(signal: number): void {
    this.stop();
    process.kill(process.pid, signal);
  }
}
