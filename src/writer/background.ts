/**
 * Main-thread side of the background thread: one per process, started on first use and
 * unref'd so it never keeps the process alive.
 */
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
} from 'node:worker_threads';
import { StoreError } from '../errors.js';
import { onExit } from '../hooks/exit.js';
import { planSignalWatch, runtimeName } from '../hooks/signal-watch.js';
import {
  type CallReply,
  Control,
  type FromBackground,
  SIGNALS,
  type SignalName,
  type StoreTarget,
  type ToBackground,
} from './protocol.js';
import { workerEntry } from './worker-entry.js';
import { rebuildError } from './writer.js';

/** Called on the main thread when a signal arrives; returns once its state is saved. */
export type SignalHandler = (signal: number) => void;

/** The `once()` steps of an open checkpoint, as the exit on a signal sees them. */
export interface SignalSteps {
  /** Writes the finished records now, blocking. */
  flush(): void;
  /** Steps whose call or record is under way. */
  readonly busy: number;
  /** A call was held back because of the signal: its program waits for the exit. */
  readonly held: boolean;
}

const SIGNAL_NAMES = Object.fromEntries(
  Object.entries(SIGNALS).map(([name, n]) => [n, name as SignalName]),
) as Record<number, SignalName>;

/** How long a signal waits for the next step boundary before the process ends without it. */
const GRACE_MS = 1000;
/** How long the first open waits for the background thread to start. */
const START_WAIT_MS = 5000;
/** How long an open waits for the background thread to watch signals. */
const WATCH_WAIT_MS = 1000;
/** A background thread whose heartbeat stands still this long is taken for dead. */
const STALE_MS = 120_000;

export class Background {
  static #instance: Background | undefined;

  /** The shared control array (see Control). */
  readonly control = new Int32Array(new SharedArrayBuffer(Control.LENGTH * 4));
  readonly #worker: Worker | undefined;
  readonly #signalHandlers = new Set<SignalHandler>();
  readonly #steps = new Set<SignalSteps>();
  readonly #fallbackListeners = new Map<SignalName, () => void>();
  readonly #flags = new Map<number, Int32Array>();
  #nextId = 1;
  #lastBeat = -1;
  #lastBeatAt = Date.now();
  #lastCheckAt = Date.now();
  readonly #calls: MessagePort;
  /** [0]: highest call answered; [1]: highest call given up on (the worker skips or undoes it). */
  readonly #callsDone = new Int32Array(new SharedArrayBuffer(8));
  #lastCall = 0;
  readonly #awaited = new Map<
    number,
    { method: string; resolve(value: unknown): void; reject(err: unknown): void }
  >();
  #keepAlive: NodeJS.Timeout | undefined;
  #handling = false;
  #alive = true;
  /** Why the thread could not start, if it could not. */
  #startFailure: string | undefined;
  #startFailureSaid = false;
  /** Why no signal watcher runs off the main thread, if none does. */
  #signalsUnavailable: string | undefined;
  #signalsNoticeSaid = false;
  #signalLog: ((line: string) => void) | undefined;
  /** Without the thread: when each checkpoint's next sync() is due (Date.now() based). */
  readonly #deadlines = new Map<number, number>();

  /** The process's background thread, started on first call. */
  static get(): Background {
    Background.#instance ??= new Background();
    return Background.#instance;
  }

  private constructor() {
    const { port1, port2 } = new MessageChannel();
    this.#calls = port1;
    this.#calls.unref();
    // A signal caught after the last step boundary (the program was ending anyway) still
    // ends the process as the signal would: with 128 + its number, not 0.
    onExit(() => {
      Atomics.store(this.control, Control.EXITING, 1);
      const signal = this.pendingSignal;
      if (signal !== 0 && !this.#handling && !process.exitCode) process.exitCode = 128 + signal;
    });
    const plan = planSignalWatch();
    this.#signalsUnavailable = plan.unavailable;
    if (plan.unavailable !== undefined && process.versions.bun !== undefined) {
      // #13.3: lets the background thread see when this thread is stuck in a busy loop.
      setInterval(() => Atomics.add(this.control, Control.MAIN_BEAT, 1), 200).unref();
    }
    let worker: Worker;
    try {
      worker = this.#start(port2, plan.unavailable === undefined ? plan.execArgv : []);
    } catch (err) {
      // Said once at open (openNotices); saves then run on the calling thread (#12.3).
      this.#startFailure = (err as Error).message;
      this.#alive = false;
      return;
    }
    // Once, at the first open: until the thread runs, neither due timers nor signals would
    // be seen, and a busy loop would never let its failure to start be reported.
    if (Atomics.wait(this.control, Control.READY, 0, START_WAIT_MS) === 'timed-out') {
      void worker.terminate();
      this.#startFailure = `it did not start within ${START_WAIT_MS / 1000} s`;
      this.#alive = false;
      return;
    }
    this.#worker = worker;
    worker.on('message', (message: FromBackground) => {
      if (message.type === 'signal') this.#onIdleSignal(message.signal);
      else if (message.type === 'reply') this.#settle(message);
      else this.#signalsLost(message.reason);
    });
    worker.on('error', (err) => {
      this.#alive = false;
      process.stderr.write(`resumable-state: background thread failed: ${err.message}\n`);
    });
    worker.on('exit', () => {
      this.#alive = false;
      this.#failAwaited();
      // Every checkpoint takes its slow path once, saves on this thread and re-arms there.
      for (const flag of this.#flags.values()) Atomics.store(flag, 0, 1);
    });
    // After the listeners: adding a 'message' listener refs the port again.
    worker.unref();
  }

  // The thread's code (worker-entry.ts) with the flags its signal watcher needs on top of
  // the main script's own; flags a worker may not be given (per-process ones such as
  // --expose-gc) are dropped.
  #start(calls: MessagePort, signalFlags: string[]): Worker {
    const entry = workerEntry();
    const start = (execArgv: string[] | undefined) =>
      new Worker('code' in entry ? entry.code : entry.file, {
        eval: 'code' in entry,
        workerData: {
          control: this.control,
          graceMs: GRACE_MS,
          calls,
          callsDone: this.#callsDone,
        },
        transferList: [calls],
        ...(execArgv === undefined ? {} : { execArgv }),
        name: 'resumable-state',
      });
    const execArgv = workerExecArgv(process.execArgv);
    const unchanged = execArgv.length === process.execArgv.length && signalFlags.length === 0;
    try {
      // Inherited as they are, unless some only make sense for the main script.
      return start(unchanged ? undefined : [...execArgv, ...signalFlags]);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
      return start(signalFlags);
    }
  }

  #post(message: ToBackground): void {
    this.#worker?.postMessage(message);
  }

  /**
   * One-line notices due at a checkpoint's open, each said once per process: the thread
   * could not start, or (when the checkpoint handles signals) no signal watcher is possible.
   */
  openNotices(signals: boolean): string[] {
    const out: string[] = [];
    if (this.#startFailure !== undefined && !this.#startFailureSaid) {
      this.#startFailureSaid = true;
      out.push(
        `the background thread could not start (${this.#startFailure}): saves run on the calling thread`,
      );
    }
    const reason = this.#signalsUnavailable ?? this.#startFailure;
    if (signals && reason !== undefined && !this.#signalsNoticeSaid) {
      this.#signalsNoticeSaid = true;
      out.push(signalsNotice(reason));
    }
    return out;
  }

  // The thread found no signal watcher although the main side expected one: async loops
  // only, said through the log of the latest checkpoint that handles signals.
  #signalsLost(reason: string): void {
    this.#signalsUnavailable = reason;
    this.#installFallback();
    if (this.#signalsNoticeSaid) return;
    this.#signalsNoticeSaid = true;
    this.#signalLog?.(`resumable-state: ${signalsNotice(reason)}`);
  }

  /** False once the thread has died; saves then run on the calling thread. */
  get alive(): boolean {
    return this.#alive && Atomics.load(this.control, Control.DEAD) === 0 && !this.#silent();
  }

  // The heartbeat has not moved for STALE_MS: the thread is gone (or stuck in one
  // synchronous step far longer than any compression of a state takes).
  #silent(): boolean {
    const beat = Atomics.load(this.control, Control.HEARTBEAT);
    const now = Date.now();
    // Not watched for a while (no wait in progress, or the whole process was suspended):
    // the silence is not the thread's, so start counting again.
    const unwatched = now - this.#lastCheckAt > 5_000;
    this.#lastCheckAt = now;
    if (beat !== this.#lastBeat || unwatched) {
      this.#lastBeat = beat;
      this.#lastBeatAt = now;
      return false;
    }
    if (now - this.#lastBeatAt < STALE_MS) return false;
    this.#alive = false;
    return true;
  }

  /** Hands a staged snapshot to the thread. */
  postWrite(message: Extract<ToBackground, { type: 'write' }>): void {
    this.#post(message);
  }

  /**
   * Runs `method(...args)` on the store built from `target` in the background thread and
   * blocks until it answers: how a shared store's asynchronous I/O serves the synchronous
   * `restore()` and `save()`. Errors come back with their class, code and cause.
   */
  call(target: StoreTarget, method: string, args: unknown[], timeoutMs: number): unknown {
    if (!this.alive) throw unreachable(target);
    const id = ++this.#lastCall;
    this.#post({ type: 'call', id, target, method, args });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(this.#callsDone, 0);
      if (done >= id) break;
      const left = deadline - Date.now();
      if (left <= 0 || !this.alive) {
        Atomics.store(this.#callsDone, 1, id);
        const why = left <= 0 ? `did not answer within ${timeoutMs} ms` : 'died';
        throw new StoreError(`The store's ${method}() ${why} (background thread)`);
      }
      Atomics.wait(this.#callsDone, 0, done, Math.min(left, 100));
    }
    // Answers arrive in call order; older ones belong to calls that timed out.
    for (;;) {
      const received = receiveMessageOnPort(this.#calls);
      if (received === undefined) throw new StoreError(`The store's ${method}() answer was lost`);
      const reply = received.message as CallReply;
      if (reply.id !== id) continue;
      if (reply.ok) return reply.value;
      throw rebuildError(reply.error, `The store's ${method}() failed`);
    }
  }

  /**
   * Like `call`, without blocking: resolves with the answer. While answers are awaited, a
   * timer keeps the event loop alive (the thread itself never does).
   */
  callAsync(target: StoreTarget, method: string, args: unknown[]): Promise<unknown> {
    if (!this.alive) {
      return Promise.reject(unreachable(target));
    }
    const id = ++this.#lastCall;
    const answer = new Promise<unknown>((resolve, reject) =>
      this.#awaited.set(id, { method, resolve, reject }),
    );
    this.#keepAlive ??= setInterval(() => {
      if (!this.alive) this.#failAwaited();
    }, 1000);
    this.#post({ type: 'call', id, target, method, args, async: true });
    return answer;
  }

  #settle(reply: CallReply): void {
    const waiter = this.#awaited.get(reply.id);
    if (waiter === undefined) return;
    this.#awaited.delete(reply.id);
    if (this.#awaited.size === 0) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
    if (reply.ok) waiter.resolve(reply.value);
    else waiter.reject(rebuildError(reply.error, `The store's ${waiter.method}() failed`));
  }

  #failAwaited(): void {
    for (const [id, waiter] of this.#awaited) {
      this.#settle({
        id,
        ok: false,
        error: {
          name: 'StoreError',
          code: 'CHECKPOINT_STORE',
          message: `The background thread died during ${waiter.method}()`,
        },
      });
    }
  }

  /** A fresh id for a checkpoint's timer. */
  newId(): number {
    return this.#nextId++;
  }

  /** Raises `flag[0]` after `delay` ms (and at once when a signal arrives). */
  arm(id: number, flag: Int32Array, delay: number): void {
    this.#flags.set(id, flag);
    if (this.alive) {
      this.#post({ type: 'arm', id, flag, delay });
      return;
    }
    // Without the thread (it died, or could not start): the flag stays up and sync() reads
    // the clock (isDue), so saves go on even in a busy synchronous loop, never stop silently.
    this.#deadlines.set(id, Date.now() + delay);
    Atomics.store(flag, 0, 1);
  }

  /** Whether checkpoint `id`'s raised flag means a save is due (always, while the thread keeps time). */
  isDue(id: number): boolean {
    const deadline = this.#deadlines.get(id);
    return deadline === undefined || Date.now() >= deadline;
  }

  disarm(id: number): void {
    this.#flags.delete(id);
    this.#deadlines.delete(id);
    this.#post({ type: 'disarm', id });
  }

  /** Signal number waiting to be handled, or 0. */
  get pendingSignal(): number {
    return this.control[Control.SIGNAL]!;
  }

  /**
   * Calls `handler` on SIGINT/SIGTERM/SIGHUP until the returned function is called. `log`
   * says it if the thread later finds no way to watch signals.
   */
  onSignal(handler: SignalHandler, log?: (line: string) => void): () => void {
    this.#signalLog = log ?? this.#signalLog;
    if (this.#signalHandlers.size === 0) {
      if (this.#worker === undefined || this.#signalsUnavailable !== undefined) {
        this.#installFallback();
      }
      this.#post({ type: 'signals', on: true });
      // A signal before the watcher runs would end the process unsaved: wait for it (ms).
      if (this.alive) Atomics.wait(this.control, Control.WATCHING, 0, WATCH_WAIT_MS);
      // The thread found none, although this side expected one: known now, said at open.
      if (Atomics.load(this.control, Control.WATCHING) === 2) {
        this.#signalsUnavailable ??= 'no signal watcher could be started in the background thread';
        this.#installFallback();
      }
    }
    this.#signalHandlers.add(handler);
    return () => {
      if (!this.#signalHandlers.delete(handler)) return;
      if (this.#signalHandlers.size === 0) this.#post({ type: 'signals', on: false });
    };
  }

  // The main thread is idle (the message got through): if the user listens to this signal,
  // their listener runs now and decides; the background thread must not end the process.
  #onIdleSignal(signal: number): void {
    // Finished steps are consistent records whatever the state is doing: write them now,
    // before the process may end without reaching a step boundary.
    for (const steps of this.#steps) {
      try {
        steps.flush();
      } catch (err) {
        process.stderr.write(`resumable-state: ${(err as Error).message}\n`);
      }
    }
    if (this.#userListeners(signal) > 0) Atomics.store(this.control, Control.SIGNAL_HANDLED, 2);
    else this.stepsChanged();
  }

  /**
   * Registers a checkpoint's steps: flushed as soon as a signal arrives and the main thread
   * is idle, and watched by `stepsChanged()`. Returns their removal.
   */
  addSteps(steps: SignalSteps): () => void {
    this.#steps.add(steps);
    return () => this.#steps.delete(steps);
  }

  /**
   * True once a signal is ending the process (no listener of the user's own decides
   * otherwise): no new `once()` step may start (#11.6a).
   */
  get stopping(): boolean {
    const signal = this.pendingSignal;
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
    for (const steps of this.#steps) {
      if (steps.busy > 0) return;
      held ||= steps.held;
    }
    if (!held) return;
    const signal = this.pendingSignal;
    this.#handling = true;
    Atomics.store(this.control, Control.SIGNAL_HANDLED, 1);
    process.exit(128 + signal);
  }

  #userListeners(signal: number): number {
    const name = SIGNAL_NAMES[signal];
    if (name === undefined) return 0;
    const ours = this.#fallbackListeners.get(name);
    return process.listeners(name).filter((l) => l !== ours).length;
  }

  /**
   * Called at a step boundary (sync(), a loop step) once a signal is pending: runs the
   * signal handlers (each saves its state), then exits with 128 + signal, unless the user
   * has listeners of their own for that signal: then they decide. State is saved only at
   * boundaries, where the program says it is consistent; a program that reaches none
   * within the grace period is ended by the background thread with its last save.
   */
  handleSignal(): void {
    const signal = this.pendingSignal;
    if (signal === 0 || this.#handling) return;
    this.#handling = true;
    Atomics.store(this.control, Control.SIGNAL_HANDLED, 1);
    // Cleared before the saves re-arm their timers, so the background thread does not take
    // the old signal for a new one and raise their flags again.
    Atomics.store(this.control, Control.SIGNAL, 0);
    for (const handler of [...this.#signalHandlers]) {
      try {
        handler(signal);
      } catch (err) {
        process.stderr.write(`resumable-state: save on signal failed: ${String(err)}\n`);
      }
    }
    if (this.#userListeners(signal) === 0) process.exit(128 + signal);
    // The user's own listener takes over (SIGNAL_HANDLED stays set, so the background
    // thread leaves the process alone); be ready to save again on the next signal.
    Atomics.store(this.control, Control.SIGNAL_HANDLED, 2);
    this.#handling = false;
  }

  // Without a signal watcher off the main thread, signals are seen only when the event
  // loop turns: async loops are covered, busy synchronous loops are not.
  #installFallback(): void {
    if (this.#fallbackListeners.size > 0) return;
    for (const [name, signal] of Object.entries(SIGNALS) as [SignalName, number][]) {
      const listener = () => {
        if (this.#signalHandlers.size === 0 || this.pendingSignal !== 0) return;
        Atomics.store(this.control, Control.SIGNAL, signal);
        for (const flag of this.#flags.values()) Atomics.store(flag, 0, 1);
        this.#onIdleSignal(signal);
        setTimeout(() => {
          if (Atomics.load(this.control, Control.SIGNAL_HANDLED) === 0) process.exit(128 + signal);
        }, GRACE_MS).unref();
      };
      this.#fallbackListeners.set(name, listener);
      process.on(name, listener);
    }
  }
}

/**
 * The main script's flags minus those that only make sense for it: a worker given
 * `--input-type` or `-e <code>` (inherited from `node --input-type=module -e …`) fails to start.
 */
export function workerExecArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (/^--input-type(=|$)/.test(arg)) {
      if (arg === '--input-type') i++;
      continue;
    }
    if (['-e', '--eval', '-p', '--print'].includes(arg)) {
      i++;
      continue;
    }
    if (/^--(eval|print)=/.test(arg)) continue;
    out.push(arg);
  }
  return out;
}

function signalsNotice(reason: string): string {
  return `signals in busy synchronous loops are not available on ${runtimeName()}: ${reason}; async loops still save on SIGTERM/SIGINT`;
}

function unreachable(target: StoreTarget): StoreError {
  return new StoreError(
    `The background thread is not running, so the store at ${target.module} cannot be reached`,
  );
}
