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
import {
  type CallReply,
  Control,
  type FromBackground,
  SIGNALS,
  type SignalName,
  type StoreTarget,
  type ToBackground,
} from './protocol.js';
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
/** A background thread whose heartbeat stands still this long is taken for dead. */
const STALE_MS = 120_000;

export class Background {
  static #instance: Background | undefined;

  /** The shared control array (see Control). */
  readonly control = new Int32Array(new SharedArrayBuffer(Control.LENGTH * 4));
  readonly #worker: Worker;
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

  /** The process's background thread, started on first call. */
  static get(): Background {
    Background.#instance ??= new Background();
    return Background.#instance;
  }

  private constructor() {
    const { port1, port2 } = new MessageChannel();
    this.#calls = port1;
    this.#calls.unref();
    const start = (execArgv: string[] | undefined) =>
      new Worker(new URL('./worker.js', import.meta.url), {
        workerData: {
          control: this.control,
          graceMs: GRACE_MS,
          calls: port2,
          callsDone: this.#callsDone,
        },
        transferList: [port2],
        ...(execArgv === undefined ? {} : { execArgv }),
        name: 'resumable-state',
      });
    const execArgv = workerExecArgv(process.execArgv);
    try {
      // Inherited as they are, unless some only make sense for the main script.
      this.#worker = start(execArgv.length === process.execArgv.length ? undefined : execArgv);
    } catch (err) {
      // Flags a worker may not be given explicitly (per-process ones such as --expose-gc).
      if ((err as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
      this.#worker = start([]);
    }
    this.#worker.on('message', (message: FromBackground) => {
      if (message.type === 'signal') this.#onIdleSignal(message.signal);
      else if (message.type === 'reply') this.#settle(message);
      else this.#installFallback();
    });
    this.#worker.on('error', (err) => {
      this.#alive = false;
      process.stderr.write(`resumable-state: background thread failed: ${err.message}\n`);
    });
    this.#worker.on('exit', () => {
      this.#alive = false;
      this.#failAwaited();
      // Every checkpoint takes its slow path once, saves on this thread and re-arms there.
      for (const flag of this.#flags.values()) Atomics.store(flag, 0, 1);
    });
    // After the listeners: adding a 'message' listener refs the port again.
    this.#worker.unref();
    // A signal caught after the last step boundary (the program was ending anyway) still
    // ends the process as the signal would: with 128 + its number, not 0.
    onExit(() => {
      Atomics.store(this.control, Control.EXITING, 1);
      const signal = this.pendingSignal;
      if (signal !== 0 && !this.#handling && !process.exitCode) process.exitCode = 128 + signal;
    });
  }

  #post(message: ToBackground): void {
    this.#worker.postMessage(message);
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
    // Degraded mode after the thread died: a main-thread timer, seen only when the event
    // loop turns (async loops), so saves go on rather than stop silently.
    setTimeout(() => Atomics.store(flag, 0, 1), Math.min(delay, 2 ** 31 - 1)).unref();
  }

  disarm(id: number): void {
    this.#flags.delete(id);
    this.#post({ type: 'disarm', id });
  }

  /** Signal number waiting to be handled, or 0. */
  get pendingSignal(): number {
    return this.control[Control.SIGNAL]!;
  }

  /** Calls `handler` on SIGINT/SIGTERM/SIGHUP until the returned function is called. */
  onSignal(handler: SignalHandler): () => void {
    if (this.#signalHandlers.size === 0) this.#post({ type: 'signals', on: true });
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

function unreachable(target: StoreTarget): StoreError {
  return new StoreError(
    `The background thread is not running, so the store at ${target.module} cannot be reached`,
  );
}
