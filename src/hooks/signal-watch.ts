/**
 * How the background thread hears SIGINT/SIGTERM/SIGHUP while the main thread spins in a
 * synchronous loop. A `process.on('SIGTERM')` listener never runs then, and a worker cannot
 * use `process.on` for signals at all; what works is a signal watcher on the worker's own
 * event loop. Every way to get one is runtime-specific, so all of them live here, tried in
 * order and feature-detected (#12.4, #13.4):
 *
 * 1. `process.binding('signal_wrap')`: Node 20 and 22 (deprecated, DEP0111).
 * 2. `internalBinding('signal_wrap')` through `internal/test/binding`: Node 24 and 26 removed
 *    (1), and this internal module only loads in a worker started with `--expose-internals`,
 *    which the main side decides (planSignalWatch) since the main process needs no flag.
 * 3. `Deno.addSignalListener`: Deno, where it fires inside a Worker while the main thread spins.
 *
 * Each prints a warning meant for other code (a deprecation, "for internal testing only");
 * exactly those warnings are dropped, while the call that triggers them runs.
 */
import { createRequire } from 'node:module';

/** Signals by name, with their numbers. */
export type SignalNumbers = Readonly<Record<string, number>>;

/** A running watch; `stop()` closes its handles. */
export interface SignalWatch {
  readonly mechanism: string;
  stop(): void;
}

/** What the main side decided: the worker's extra flags, or why no mechanism can work. */
export type SignalPlan = { execArgv: string[]; unavailable?: undefined } | { unavailable: string };

interface SignalHandle {
  onsignal: ((signal: number) => void) | undefined;
  start(signal: number): number;
  close(): void;
}
type SignalWrap = { Signal: new () => SignalHandle };

interface DenoSignals {
  addSignalListener(name: string, listener: () => void): void;
  removeSignalListener(name: string, listener: () => void): void;
  version?: { deno?: string };
}

const EXPOSE_INTERNALS = '--expose-internals';

function deno(): DenoSignals | undefined {
  const d = (globalThis as { Deno?: Partial<DenoSignals> }).Deno;
  return typeof d?.addSignalListener === 'function' ? (d as DenoSignals) : undefined;
}

/** `Node v24.1.0`, `Deno 2.9.0`, `Bun 1.4.0`: the runtime as a notice names it. */
export function runtimeName(): string {
  const d = (globalThis as { Deno?: DenoSignals }).Deno;
  if (d !== undefined) return `Deno ${d.version?.deno ?? ''}`.trim();
  const bun = process.versions.bun;
  if (bun !== undefined) return `Bun ${bun}`;
  return `Node ${process.version}`;
}

/**
 * Main side, before the worker starts: which flags it needs for a watcher, or why there
 * will be none. Probing `process.binding` here is cheap and tells Node 20/22 from 24/26.
 */
export function planSignalWatch(): SignalPlan {
  if (deno() !== undefined) return { execArgv: [] };
  try {
    processBinding();
    return { execArgv: [] };
  } catch (err) {
    if (process.versions.bun !== undefined) return { unavailable: (err as Error).message };
    // Node 24+: the internal binding, in a worker given the flag (the worker confirms).
    if (typeof process.versions.node === 'string') return { execArgv: [EXPOSE_INTERNALS] };
    return { unavailable: (err as Error).message };
  }
}

/**
 * Worker side: watches `signals` with the first mechanism that works, calling `onSignal`
 * with the signal's number. Throws, with every mechanism's reason, when none does.
 */
export function watchSignals(
  signals: SignalNumbers,
  onSignal: (signal: number) => void,
): SignalWatch {
  const reasons: string[] = [];
  const d = deno();
  if (d !== undefined) return watchDeno(d, signals, onSignal);
  try {
    return watchWrap('process.binding', processBinding(), signals, onSignal);
  } catch (err) {
    reasons.push(`process.binding('signal_wrap'): ${(err as Error).message}`);
  }
  if (process.execArgv.includes(EXPOSE_INTERNALS)) {
    try {
      return watchWrap('internalBinding', internalBinding(), signals, onSignal);
    } catch (err) {
      reasons.push(`internalBinding('signal_wrap'): ${(err as Error).message}`);
    }
  }
  throw new Error(reasons.join('; '));
}

function processBinding(): SignalWrap {
  const binding = (process as unknown as { binding(name: string): SignalWrap }).binding;
  const wrap = quietly('DEP0111', () => binding.call(process, 'signal_wrap'));
  if (typeof wrap?.Signal !== 'function') throw new Error('no Signal class');
  return wrap;
}

function internalBinding(): SignalWrap {
  // Any parent path does: --expose-internals lets every require() load internal modules.
  const require = createRequire(`${process.cwd()}/`);
  const wrap = quietly('internal/test/binding', () => {
    const testing = require('internal/test/binding') as {
      internalBinding(name: string): SignalWrap;
    };
    return testing.internalBinding('signal_wrap');
  });
  if (typeof wrap?.Signal !== 'function') throw new Error('no Signal class');
  return wrap;
}

function watchWrap(
  mechanism: string,
  { Signal }: SignalWrap,
  signals: SignalNumbers,
  onSignal: (signal: number) => void,
): SignalWatch {
  const handles: SignalHandle[] = [];
  for (const signal of Object.values(signals)) {
    const handle = new Signal();
    handle.onsignal = onSignal;
    if (handle.start(signal) === 0) handles.push(handle);
    else handle.close();
  }
  if (handles.length === 0) throw new Error('no signal could be watched');
  return {
    mechanism,
    stop: () => {
      for (const handle of handles.splice(0)) handle.close();
    },
  };
}

function watchDeno(
  d: DenoSignals,
  signals: SignalNumbers,
  onSignal: (signal: number) => void,
): SignalWatch {
  const listeners = Object.entries(signals).map(([name, n]) => {
    const listener = () => onSignal(n);
    d.addSignalListener(name, listener);
    return [name, listener] as const;
  });
  return {
    mechanism: 'Deno.addSignalListener',
    stop: () => {
      for (const [name, listener] of listeners.splice(0)) d.removeSignalListener(name, listener);
    },
  };
}

/**
 * Runs `fn` with the one warning it triggers (matched by its code or type) dropped: it is
 * about our use of an API, nothing the user can act on. Other warnings pass through.
 */
function quietly<R>(warning: string, fn: () => R): R {
  const emitWarning = process.emitWarning;
  process.emitWarning = ((message: string | Error, ...rest: unknown[]) => {
    const options = rest[0];
    const type = typeof options === 'object' ? (options as { type?: string })?.type : options;
    const code = typeof options === 'object' ? (options as { code?: string })?.code : rest[1];
    if (type === warning || code === warning) return;
    (emitWarning as (...args: unknown[]) => void).call(process, message, ...rest);
  }) as typeof process.emitWarning;
  try {
    return fn();
  } finally {
    process.emitWarning = emitWarning;
  }
}
