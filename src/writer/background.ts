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
import { WARNING } from '../hooks/exit.js';
import { Signals } from '../hooks/signals.js';
import { setWritebackHandOff } from '../store/writeback.js';
import {
  type CallReply,
  Control,
  type FromBackground,
  type StoreTarget,
  type ToBackground,
} from './protocol.js';
import { workerEntry } from './worker-entry.js';
import { rebuildError } from './writer.js';

/** How long the first open waits for the background thread to start. */
const START_WAIT_MS = 5000;
/** A background thread whose heartbeat stands still this long is taken for dead. */
const STALE_MS = 120_000;
/**
 * Early flushes of a main-thread save (store/writeback.ts) in flight at once on libuv's pool
 * (4 threads, shared with the user's own async I/O): one while the file is written, one
 * more for the final one, before the checksum. With the background thread's own (at most
 * one), a thread of the pool is always left to the user.
 */
const WRITEBACKS_WRITING = 1;
const WRITEBACKS_FINAL = 2;

export class Background {
  static #instance: Background | undefined;

  /** The shared control array (see Control). */
  readonly control = new Int32Array(new SharedArrayBuffer(Control.LENGTH * 4));
  readonly #worker: Worker | undefined;
  /** The signal policy (hooks/signals.ts); this thread only watches and posts for it. */
  readonly signals: Signals;
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
  #alive = true;
  /** Why the thread could not start, if it could not. */
  #startFailure: string | undefined;
  #startFailureSaid = false;
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
    this.signals = new Signals({
      alive: () => this.alive,
      watch: (on) => this.#post({ type: 'signals', on }),
      raiseDue: () => this.#raiseAll(),
    });
    const { plan } = this.signals;
    let worker: Worker;
    try {
      worker = this.#start(port2, plan.unavailable === undefined ? plan.execArgv : []);
    } catch (err) {
      // Said once at open (openNotices); saves then run on the calling thread (#12.3).
      this.#noThread((err as Error).message);
      return;
    }
    // Once, at the first open: until the thread runs, neither due timers nor signals would
    // be seen, and a busy loop would never let its failure to start be reported.
    if (Atomics.wait(this.control, Control.READY, 0, START_WAIT_MS) === 'timed-out') {
      void worker.terminate();
      this.#noThread(`it did not start within ${START_WAIT_MS / 1000} s`);
      return;
    }
    this.#worker = worker;
    worker.on('message', (message: FromBackground) => {
      if (message.type === 'signal') this.signals.arrivedIdle(message.signal);
      else if (message.type === 'reply') this.#settle(message);
      else this.signals.lost(message.reason);
    });
    setWritebackHandOff((path, final) => this.#handWriteback(path, final));
    worker.on('error', (err) => {
      this.#alive = false;
      // Process-wide: no checkpoint owns the thread (#16.5).
      process.emitWarning(`background thread failed: ${err.message}`, WARNING);
    });
    worker.on('exit', () => {
      this.#alive = false;
      this.#failAwaited();
      // Every checkpoint takes its slow path once, saves on this thread and re-arms there.
      this.#raiseAll();
    });
    // After the listeners: adding a 'message' listener refs the port again.
    worker.unref();
  }

  // The background thread opens and closes the flush's descriptor: its event loop turns
  // even while a synchronous loop of saves holds this one (store/writeback.ts).
  #handWriteback(path: string, final: boolean): boolean {
    if (!this.alive) return false;
    const limit = final ? WRITEBACKS_FINAL : WRITEBACKS_WRITING;
    if (Atomics.load(this.control, Control.WRITEBACKS) >= limit) return true;
    Atomics.add(this.control, Control.WRITEBACKS, 1);
    this.#post({ type: 'writeback', path });
    return true;
  }

  #raiseAll(): void {
    for (const flag of this.#flags.values()) Atomics.store(flag, 0, 1);
  }

  #noThread(reason: string): void {
    this.#startFailure = reason;
    this.#alive = false;
    this.signals.noThread(reason);
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
          signals: this.signals.share,
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
    const notice = signals ? this.signals.openNotice() : undefined;
    if (notice !== undefined) out.push(notice);
    return out;
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

  /** Has the thread fault in the pages of a new staging buffer (#17.2), not during saves. */
  prefault(data: SharedArrayBuffer, saving: Int32Array): void {
    this.#post({ type: 'prefault', data, saving });
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
}

/**
 * The main script's flags minus those that only make sense for it: a worker given
 * `--input-type` or `-e <code>` (inherited from `node --input-type=module -e …`) fails to start.
 */
function workerExecArgv(argv: readonly string[]): string[] {
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
