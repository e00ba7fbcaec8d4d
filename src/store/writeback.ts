/**
 * Early write-back of a checkpoint file being written (#17.1): its pages are handed to the
 * disk while the rest is still written and checksummed, instead of all at the final fsync.
 * Best effort, never the fsync a save relies on: the writer's own fsync follows on its own
 * descriptor, opened before any of these, so it still hears of a write-back error (Linux
 * 4.13 and later report one to every descriptor open when it happened).
 *
 * A flush runs on libuv's pool on a descriptor of its own, closed when the flush ends, which
 * only the event loop of the thread that started it can see. A synchronous loop of saves
 * never lets the main thread's loop turn, so the main thread hands its flushes to the
 * background thread (setWritebackHandOff), whose loop is free. Elsewhere a file gets only
 * the flush before its checksum, and only while fewer than MAX_LOCAL are open.
 */
import nodeFs from 'node:fs';

/**
 * A large file is handed to the disk every this many bytes while it is written. S1's save()
 * (104 MB), 11 alternating rounds, two runs: 84.7 and 89.3 ms flushing only before the
 * checksum, 80.0 and 80.6 ms with this (a raw write and fsync: 81.5 and 85.5 ms).
 */
const WRITEBACK_SLICE = 8 * 1024 ** 2;
/** At most this many hand-overs per file: a larger file is handed over in sixteenths. */
const MAX_WRITEBACKS = 16;
/**
 * Flushes open at once on a thread whose event loop may not turn meanwhile. One: with the
 * main thread's (writer/background.ts) at most 3 of libuv's 4 pool threads are ours.
 */
const MAX_LOCAL = 1;

// Never a planted link, and never a wait on a FIFO planted at the path (opened without
// O_NONBLOCK it would block until a writer comes, with the background thread's loop).
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = nodeFs.constants;
const FLAGS = O_RDONLY | (O_NOFOLLOW ?? 0) | (O_NONBLOCK ?? 0);

/**
 * Takes a flush of `path` over (true), or leaves it to this thread (false). `final`: the
 * whole file is written but its checksum; else the writer is still writing.
 */
export type WritebackHandOff = (path: string, final: boolean) => boolean;

let handOff: WritebackHandOff | undefined;
let localOpen = 0;

/** Set by the main thread's background thread when it starts; returns the one before. */
export function setWritebackHandOff(
  fn: WritebackHandOff | undefined,
): WritebackHandOff | undefined {
  const before = handOff;
  handOff = fn;
  return before;
}

/**
 * Starts flushing the file at `path` on libuv's pool and returns at once; `closed` runs when
 * its descriptor is closed (or could not be opened: the file is gone, or no descriptor is
 * left, which only makes this flush not happen).
 */
export function startWriteback(path: string, closed: () => void = () => {}): void {
  let fd: number;
  try {
    fd = nodeFs.openSync(path, FLAGS);
  } catch {
    closed();
    return;
  }
  let regular = false;
  try {
    regular = nodeFs.fstatSync(fd).isFile();
  } catch {}
  if (!regular) {
    nodeFs.close(fd, closed);
    return;
  }
  nodeFs.fsync(fd, () => nodeFs.close(fd, closed));
}

/** Asks for a flush of `path`, by the background thread if there is one (see top). */
export function requestWriteback(path: string, final: boolean): void {
  // Windows refuses fsync on a read-only handle, and an open handle would block the
  // renames of the next save.
  if (process.platform === 'win32') return;
  if (handOff?.(path, final)) return;
  if (!final || localOpen >= MAX_LOCAL) return;
  localOpen++;
  startWriteback(path, () => localOpen--);
}

/**
 * Asks for a flush of `path` (requestWriteback) each time another slice of `parts` was
 * written: every WRITEBACK_SLICE bytes, or every sixteenth of a larger file. `slice` is the
 * most bytes to write per call (at most `maxSlice`), so that the flushes come in between.
 */
export function writebackPace(
  path: string,
  parts: readonly Uint8Array[],
  maxSlice: number,
): { slice: number; wrote(bytes: number): void } {
  const total = parts.reduce((sum, part) => sum + part.byteLength, 0);
  const every = Math.max(WRITEBACK_SLICE, Math.ceil(total / MAX_WRITEBACKS));
  let unflushed = 0;
  return {
    slice: Math.min(maxSlice, every),
    wrote(bytes) {
      unflushed += bytes;
      if (unflushed < every) return;
      unflushed = 0;
      requestWriteback(path, false);
    },
  };
}
