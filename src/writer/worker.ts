/**
 * Entry of the background thread. Keeps the due timers of sync(), watches for signals and
 * writes staged snapshots (compression, checksum, durable write) off the main thread.
 *
 * Signals: this thread's half of them is hooks/signals-worker.ts (it watches while the main
 * thread is busy, raising the due flags); here it is only started, stopped and given the
 * timers' flags.
 *
 * Bundled into a string at build time (scripts/build-worker.mjs) and started with `eval`,
 * so a bundled app needs no file of it beside the bundle (#12.3): imports here must stay
 * static, except the stores named by module (shared stores' client code).
 */
import { rm } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { packCheckpoint } from '../codec/container.js';
import { WorkerSignals } from '../hooks/signals-worker.js';
import { backgroundFileStore } from '../store/file.js';
import { hostRemoteStore } from '../store/remote-host.js';
import { startWriteback } from '../store/writeback.js';
import {
  type BackgroundData,
  BUILT_IN,
  type CallReply,
  Control,
  type ErrorReport,
  type FromBackground,
  type ReportArea,
  Slot,
  Status,
  type StoreTarget,
  type ToBackground,
} from './protocol.js';
import { prefaultStep, readStaged } from './staging.js';

const { control, signals: signalShare, calls, callsDone } = workerData as BackgroundData;
const port = parentPort!;
const timers = new Map<number, { timer: NodeJS.Timeout; flag: Int32Array }>();

const post = (message: FromBackground) => port.postMessage(message);
const signals = new WorkerSignals(signalShare, {
  // Every due flag goes up so the next sync() anywhere takes its slow path and sees it.
  arrived: () => {
    for (const { flag } of timers.values()) raise(flag);
  },
  tell: (signal) => post({ type: 'signal', signal }),
  unavailable: (reason) => post({ type: 'signals-unavailable', reason }),
});

const HEARTBEAT_MS = 500;
/** Node's setTimeout holds at most 2^31 - 1 ms; longer intervals are waited in steps. */
const MAX_TIMEOUT = 2 ** 31 - 1;

// Anything unexpected here must not leave the main thread waiting for writes forever.
function fatal(err: unknown): void {
  Atomics.store(control, Control.DEAD, 1);
  process.stderr.write(`resumable-state: background thread failed: ${String(err)}\n`);
  process.exit(1);
}
process.on('uncaughtException', fatal);
setInterval(() => Atomics.add(control, Control.HEARTBEAT, 1), HEARTBEAT_MS).unref();
process.on('unhandledRejection', fatal);

// Step by step, held off while the main thread saves (#17.1); between steps the thread
// serves its messages (writes, calls of shared stores, signals).
function prefault(data: SharedArrayBuffer, saving: Int32Array, from = 0): void {
  if (from >= data.byteLength) return;
  const next = prefaultStep(data, saving, from);
  if (next === from) setTimeout(() => prefault(data, saving, from), 5);
  else setImmediate(() => prefault(data, saving, next));
}

function raise(flag: Int32Array): void {
  Atomics.store(flag, 0, 1);
}

/** Sets `control[index]` and wakes the main thread waiting on it. */
function settle(index: number, value: number): void {
  Atomics.store(control, index, value);
  Atomics.notify(control, index);
}

port.on('message', (message: ToBackground) => {
  switch (message.type) {
    case 'arm':
      clearTimeout(timers.get(message.id)?.timer);
      arm(message.id, message.flag, message.delay);
      if (signals.pending !== 0) raise(message.flag);
      break;
    case 'disarm':
      clearTimeout(timers.get(message.id)?.timer);
      timers.delete(message.id);
      break;
    case 'signals':
      if (message.on) signals.start();
      else signals.stop();
      break;
    case 'prefault':
      prefault(message.data, message.saving);
      break;
    case 'writeback':
      startWriteback(message.path, () => Atomics.sub(control, Control.WRITEBACKS, 1));
      break;
    case 'write':
      // One write at a time per store, in order: a later snapshot lands after an earlier one.
      enqueue(message.target, () => write(message));
      break;
    case 'call':
      // In its store's queue: a call sees every write submitted before it.
      enqueue(message.target, () => call(message));
      break;
  }
});

// The main thread waits for this at the first open: from then on its timers and signals
// are in this thread's hands.
settle(Control.READY, 1);

function arm(id: number, flag: Int32Array, delay: number): void {
  const step = Math.min(delay, MAX_TIMEOUT);
  const timer = setTimeout(() => {
    if (delay > step) arm(id, flag, delay - step);
    else raise(flag);
  }, step);
  timers.set(id, { timer, flag });
}

/** One queue per store: a slow or stalled server never holds up another store's writes. */
const queues = new Map<string, Promise<void>>();

function enqueue(target: StoreTarget, task: () => Promise<void>): void {
  const key = JSON.stringify(target);
  const next = (queues.get(key) ?? Promise.resolve()).then(task).catch(fatal);
  queues.set(key, next);
  void next.then(() => {
    if (queues.get(key) === next) queues.delete(key);
  });
}
/** A store as built here: local stores answer at once, shared ones (RemoteHost) with promises. */
type HostedStore = {
  write(name: string, parts: readonly Uint8Array[], keep: number): void | Promise<void>;
} & Record<string, unknown>;

const stores = new Map<string, Promise<HostedStore>>();

// Our own stores come with this thread's code: no module to find beside a bundle (#12.3).
const BUILT_IN_STORES: Record<string, Record<string, unknown>> = {
  [BUILT_IN.file]: { backgroundFileStore },
  [BUILT_IN.remoteHost]: { hostRemoteStore },
};

// One instance per target for the life of the thread: it holds connections and leases.
function storeFor(target: StoreTarget): Promise<HostedStore> {
  const key = JSON.stringify(target);
  let store = stores.get(key);
  if (store === undefined) {
    const builtIn = BUILT_IN_STORES[target.module];
    store = (builtIn === undefined ? import(target.module) : Promise.resolve(builtIn)).then(
      (module: Record<string, (...args: unknown[]) => HostedStore | Promise<HostedStore>>) => {
        const create = module[target.name];
        if (typeof create !== 'function') {
          throw new TypeError(`Store module ${target.module} has no export named ${target.name}`);
        }
        return create(...target.args);
      },
    );
    // A failed build (module missing) is reported to this caller and retried by the next.
    store.catch(() => stores.delete(key));
    stores.set(key, store);
  }
  return store;
}

async function call(message: Extract<ToBackground, { type: 'call' }>): Promise<void> {
  const { id, method, args } = message;
  // The caller gave up waiting (timeout): do not start what nobody will see.
  if (Atomics.load(callsDone, 1) >= id) return;
  let reply: CallReply;
  let store: HostedStore | undefined;
  try {
    store = await storeFor(message.target);
    const fn = store[method];
    if (typeof fn !== 'function') throw new TypeError(`The store has no method ${method}`);
    const value = await (fn as (...a: unknown[]) => unknown).apply(store, args);
    reply = { id, ok: true, value };
  } catch (err) {
    reply = { id, ok: false, error: describeError(err) };
  }
  if (message.async === true) {
    try {
      post({ type: 'reply', ...reply });
    } catch (err) {
      post({ type: 'reply', id, ok: false, error: describeError(err) });
    }
    return;
  }
  if (Atomics.load(callsDone, 1) >= id && reply.ok) {
    await undoAbandoned(store!, method, args, reply.value);
    return;
  }
  try {
    calls.postMessage(reply);
  } catch (err) {
    // An answer that cannot cross threads (a function in it) is this call's error, not the thread's.
    calls.postMessage({ id, ok: false, error: describeError(err) } satisfies CallReply);
  }
  // Ids are answered in order per store, not across stores: keep the highest.
  for (let done = Atomics.load(callsDone, 0); done < id; done = Atomics.load(callsDone, 0)) {
    if (Atomics.compareExchange(callsDone, 0, done, id) === done) break;
  }
  Atomics.notify(callsDone, 0);
}

// A call that finished after its caller gave up must not leave effects nobody knows of.
async function undoAbandoned(
  store: HostedStore,
  method: string,
  args: unknown[],
  value: unknown,
): Promise<void> {
  try {
    if (method === 'lock' && typeof store.unlock === 'function') {
      await (store.unlock as (name: unknown) => Promise<void>)(args[0]);
    }
    const fetched = value as { path?: unknown; temporary?: unknown } | undefined;
    if (method === 'fetch' && fetched?.temporary === true && typeof fetched.path === 'string') {
      await rm(fetched.path, { force: true });
    }
  } catch {}
}

async function write(message: Extract<ToBackground, { type: 'write' }>): Promise<void> {
  const { status, slot, seq } = message;
  // A snapshot replaced by a newer one while queued is skipped: only the newest is written.
  if (Atomics.compareExchange(status, Status.SLOTS + slot, seq, Slot.CLAIMED) !== seq) return;
  try {
    const store = await storeFor(message.target);
    const { descriptor, encoded } = readStaged(message.data);
    const meta = descriptor.meta as Parameters<typeof packCheckpoint>[0];
    // The staged snapshot is this save's own copy (its slot is claimed): no copy needed.
    // The file store computes the checksum while the disk flushes the bytes (#17.1).
    const parts = packCheckpoint(meta, encoded, descriptor.compression, {
      copyShared: false,
      deferChecksum: store.sealsChecksum === true,
    });
    await store.write(descriptor.name, parts, descriptor.keep);
    const { rawBytes, storedBytes, codec } = parts.meta;
    report(status, Status.RESULT, { seq, rawBytes, storedBytes, codec });
  } catch (err) {
    report(status, Status.ERROR, describeError(err));
    Atomics.store(status, Status.FAILED, seq);
    raise(message.due);
  }
  Atomics.store(status, Status.SLOTS + slot, Slot.FREE);
  Atomics.store(status, Status.DONE, seq);
  Atomics.notify(status, Status.DONE);
}

/**
 * Writes a JSON report into its area of the status buffer under a seqlock: the version is
 * odd while writing, so a reader retries instead of parsing half-written bytes.
 */
function report(status: Int32Array, area: ReportArea, value: object): void {
  const json = fitReport(value, area.bytes);
  Atomics.add(status, area.version, 1);
  new Uint8Array(status.buffer, area.at, json.byteLength).set(json);
  Atomics.store(status, area.length, json.byteLength);
  Atomics.add(status, area.version, 1);
}

// A report too long for its area (a huge name or path) keeps its class, code and the start
// of its message; the cause keeps its code only. Always ends: the last try is short.
function fitReport(value: object, room: number): Buffer {
  const encode = (v: object) => Buffer.from(JSON.stringify(v), 'utf8');
  let json = encode(value);
  if (json.byteLength <= room) return json;
  const { message, cause, ...rest } = value as { message?: unknown; cause?: { code?: string } };
  const brief: Record<string, unknown> = { ...rest };
  if (cause?.code !== undefined)
    brief.cause = { name: 'Error', message: cause.code, code: cause.code };
  const text = String(message ?? '');
  for (let keep = Math.floor(room / 2); keep >= 64; keep = Math.floor(keep / 2)) {
    json = encode({ ...brief, message: `${Buffer.from(text).subarray(0, keep).toString()}…` });
    if (json.byteLength <= room) return json;
  }
  return encode({ name: 'Error', message: 'the error report was too long to keep' });
}

function describeError(err: unknown): ErrorReport {
  const e = err as Error & { code?: string; cause?: unknown };
  const out: ErrorReport = {
    name: e?.name ?? 'Error',
    message: e?.message ?? String(err),
  };
  if (typeof e?.code === 'string') out.code = e.code;
  const owner = e as { pid?: unknown; host?: unknown };
  if (typeof owner?.pid === 'number' && typeof owner.host === 'string') {
    out.owner = { pid: owner.pid, host: owner.host };
  }
  const cause = e?.cause as
    | (Error & { code?: string; errno?: number; syscall?: string; path?: string })
    | undefined;
  if (cause instanceof Error) {
    out.cause = { name: cause.name, message: cause.message };
    for (const key of ['code', 'errno', 'syscall', 'path'] as const) {
      if (cause[key] !== undefined) (out.cause as Record<string, unknown>)[key] = cause[key];
    }
  }
  return out;
}
