/**
 * Entry of the background thread. Keeps the due timers of sync() and watches for signals.
 *
 * Signals: a `process.on('SIGTERM')` listener never runs while the main thread is busy in a
 * synchronous loop (and then the process does not die either). This thread has its own
 * event loop, so a libuv signal watcher started here fires at once; it raises a shared
 * flag that the next `sync()` or loop step on the main thread sees. Node only exposes
 * that watcher through the deprecated `process.binding('signal_wrap')`; where it is
 * missing, the main thread falls back to `process.on` (async loops only).
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  type BackgroundData,
  Control,
  type FromBackground,
  SIGNALS,
  type ToBackground,
} from './protocol.js';

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
  }
});
