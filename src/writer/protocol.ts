/**
 * Messages and shared memory between the main thread and the background thread.
 * The background thread keeps time (raising due flags that sync() reads with a plain load:
 * ~1 ns, no clock read) and watches for signals even while the main thread is busy.
 */

/** Indexes in the shared control array. */
export const Control = {
  /** Signal number received by the background thread, 0 if none. */
  SIGNAL: 0,
  /** Set by the main thread once it has started to handle that signal. */
  SIGNAL_HANDLED: 1,
  /** Length of the control array. */
  LENGTH: 2,
} as const;

/** Signals that save and exit, with their numbers on Linux and macOS. */
export const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
export type SignalName = keyof typeof SIGNALS;

export type ToBackground =
  | { type: 'arm'; id: number; flag: Int32Array; delay: number }
  | { type: 'disarm'; id: number }
  | { type: 'signals'; on: boolean };

export type FromBackground = { type: 'signals-unavailable'; reason: string };

export interface BackgroundData {
  control: Int32Array;
  /** How long to wait for the main thread to act on a signal before ending the process. */
  graceMs: number;
}
