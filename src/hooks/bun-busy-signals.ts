/**
 * Bun delivers no signal to a Worker thread and offers no watcher that runs beside a busy
 * main thread (#13.3): its `process.on('SIGTERM')` listener, which lets async loops save,
 * only runs when the main thread yields. While the main thread is seen busy (its beat stops
 * for a second) the background thread puts the default action back for those signals
 * (sigaction through bun:ffi), so SIGTERM/SIGINT end a busy loop as they would without us
 * (nothing saved on the signal; the background saves made so far stay) instead of being
 * held forever; once the main thread turns its event loop again, Bun's own handlers return.
 */

interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: { sigaction(signal: number, act: unknown, old: unknown): number } };
  ptr(view: Uint8Array): unknown;
}

/** Larger than `struct sigaction` on Linux (152 bytes) and macOS (16). */
const SIGACTION_BYTES = 256;
const CHECK_MS = 250;
/** Beats missed before the main thread counts as busy (its beat comes every 200 ms). */
const BUSY_CHECKS = 4;

/** Starts the fallback; returns why it cannot run here, or undefined once it runs. */
export function defaultSignalsWhileBusy(
  beat: () => number,
  signals: readonly number[],
): string | undefined {
  const getBuiltin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  const ffi = getBuiltin?.call(process, 'bun:ffi') as BunFfi | undefined;
  if (ffi === undefined) return 'bun:ffi is not available';
  let sigaction: (signal: number, act: unknown, old: unknown) => number;
  try {
    const libc = ffi.dlopen(process.platform === 'darwin' ? 'libc.dylib' : 'libc.so.6', {
      sigaction: { args: ['i32', 'ptr', 'ptr'], returns: 'i32' },
    });
    sigaction = libc.symbols.sigaction;
  } catch (err) {
    return `libc's sigaction cannot be called: ${(err as Error).message}`;
  }
  const defaults = new Uint8Array(SIGACTION_BYTES); // all zero: SIG_DFL
  const saved = new Map<number, Uint8Array>();
  let last = beat();
  let missed = 0;
  const timer = setInterval(() => {
    const now = beat();
    if (now !== last) {
      last = now;
      missed = 0;
      for (const [signal, action] of saved) sigaction(signal, ffi.ptr(action), null);
      saved.clear();
    } else if (++missed >= BUSY_CHECKS && saved.size === 0) {
      for (const signal of signals) {
        const old = new Uint8Array(SIGACTION_BYTES);
        if (sigaction(signal, ffi.ptr(defaults), ffi.ptr(old)) === 0) saved.set(signal, old);
      }
    }
  }, CHECK_MS);
  (timer as { unref?: () => void }).unref?.();
  return undefined;
}
