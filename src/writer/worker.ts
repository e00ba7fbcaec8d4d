/**
 * Entry of the background thread. Keeps the due timers of sync(), watches for signals and
 * writes staged snapshots (compression, checksum, durable write) off the main thread.
 *
 * Signals: a `process.on('SIGTERM')` listener never runs while the main thread is busy in a
 * synchronous loop (and then the process does not die either). This thread has its own
 * event loop, so a libuv signal watcher started here fires at once; it raises a shared
 * flag that the next `sync()` or loop step on the main thread sees. Node only exposes
 * that watcher through the deprecated `process.binding('signal_wrap')`; where it is
 * missing, the main thread falls back to `process.on` (async loops only).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { packCheckpoint } from '../codec/container.js';
import type { CheckpointStore } from '../store/store.js';
import {
  type BackgroundData,
  Control,
  type ErrorReport,
  type FromBackground,
  SIGNALS,
  Slot,
  Status,
  type StoreTarget,
  type ToBackground,
} from './protocol.js';
import { readStaged } from './staging.js';

interface SignalHandle {
  onsignal: ((signal: number) => void) | undefined;
  start(signal: number): number;
  close(): void;
}

const { control, graceMs } = workerData as BackgroundData;
const port = parentPort!;
const timers = new Map<number, { timer: NodeJS.Timeout; flag: Int32Array }>();
let handles: SignalHandle[] = [];

const post = (message: FromBackground) => port.postMessage(message);

function raise(flag: Int32Array): void {
  Atomics.store(flag, 0, 1);
}

function startSignals(): void {
  if (handles.length > 0) return;
  let Signal: new () => SignalHandle;
  try {
    // The deprecation warning would reach the user's stderr; this thread prints nothing.
    process.emitWarning = () => {};
    ({ Signal } = (
      process as unknown as { binding(name: string): { Signal: new () => SignalHandle } }
    ).binding('signal_wrap'));
  } catch (err) {
    post({ type: 'signals-unavailable', reason: (err as Error).message });
    return;
  }
  for (const signal of Object.values(SIGNALS)) {
    const handle = new Signal();
    handle.onsignal = onSignal;
    if (handle.start(signal) === 0) handles.push(handle);
    else handle.close();
  }
}

function stopSignals(): void {
  for (const handle of handles) handle.close();
  handles = [];
}

function onSignal(signal: number): void {
  if (Atomics.load(control, Control.SIGNAL) !== 0) return;
  Atomics.store(control, Control.SIGNAL, signal);
  // Every due flag goes up so the next sync() anywhere takes its slow path and sees it.
  for (const { flag } of timers.values()) raise(flag);
  // If the main thread never reaches a sync() or an idle moment, end the process anyway,
  // as the signal would have without us: default action first, SIGKILL as the last resort.
  setTimeout(() => {
    if (Atomics.load(control, Control.SIGNAL_HANDLED) !== 0) return;
    stopSignals();
    process.kill(process.pid, signal);
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), graceMs).unref();
  }, graceMs);
}

port.on('message', (message: ToBackground) => {
  switch (message.type) {
    case 'arm': {
      clearTimeout(timers.get(message.id)?.timer);
      const { flag, id } = message;
      const timer = setTimeout(() => raise(flag), message.delay);
      timers.set(id, { timer, flag });
      if (Atomics.load(control, Control.SIGNAL) !== 0) raise(flag);
      break;
    }
    case 'disarm':
      clearTimeout(timers.get(message.id)?.timer);
      timers.delete(message.id);
      break;
    case 'signals':
      if (message.on) startSignals();
      else stopSignals();
      break;
    case 'write':
      // One write at a time, in order: a later snapshot of a checkpoint lands after an earlier one.
      queue = queue.then(() => write(message));
      break;
  }
});

let queue: Promise<void> = Promise.resolve();
const stores = new Map<string, Promise<CheckpointStore>>();

function storeFor(target: StoreTarget): Promise<CheckpointStore> {
  const key = JSON.stringify(target);
  let store = stores.get(key);
  if (store === undefined) {
    store = import(target.module).then(
      (module: Record<string, (...args: unknown[]) => CheckpointStore>) =>
        module[target.name]!(...target.args),
    );
    stores.set(key, store);
  }
  return store;
}

async function write(message: Extract<ToBackground, { type: 'write' }>): Promise<void> {
  const { status, slot, seq } = message;
  // A snapshot replaced by a newer one while queued is skipped: only the newest is written.
  if (Atomics.compareExchange(status, Status.SLOTS + slot, seq, Slot.CLAIMED) !== seq) return;
  try {
    const store = await storeFor(message.target);
    const { descriptor, encoded } = readStaged(message.data);
    const meta = descriptor.meta as Parameters<typeof packCheckpoint>[0];
    const parts = packCheckpoint(meta, encoded, descriptor.compression);
    store.write(descriptor.name, parts, descriptor.keep);
    const header = JSON.parse(Buffer.from(parts[1]!).toString('utf8')) as {
      meta: { rawBytes: number; storedBytes: number; codec: string };
    };
    const { rawBytes, storedBytes, codec } = header.meta;
    report(status, Status.RESULT_AT, Status.RESULT_LENGTH, { rawBytes, storedBytes, codec });
  } catch (err) {
    report(status, Status.ERROR_AT, Status.ERROR_LENGTH, describeError(err));
    Atomics.store(status, Status.FAILED, seq);
    raise(message.due);
  }
  Atomics.store(status, Status.SLOTS + slot, Slot.FREE);
  Atomics.store(status, Status.DONE, seq);
  Atomics.notify(status, Status.DONE);
}

function report(status: Int32Array, at: number, lengthIndex: number, value: object): void {
  const room = (lengthIndex === Status.RESULT_LENGTH ? Status.ERROR_AT : Status.BYTES) - at;
  let json = Buffer.from(JSON.stringify(value), 'utf8');
  if (json.byteLength > room) {
    json = Buffer.from(
      JSON.stringify({ name: 'Error', message: json.toString().slice(0, room / 2) }),
    );
  }
  new Uint8Array(status.buffer, at, json.byteLength).set(json);
  Atomics.store(status, lengthIndex, json.byteLength);
}

function describeError(err: unknown): ErrorReport {
  const e = err as Error & { code?: string; cause?: unknown };
  const out: ErrorReport = {
    name: e?.name ?? 'Error',
    message: e?.message ?? String(err),
  };
  if (typeof e?.code === 'string') out.code = e.code;
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
