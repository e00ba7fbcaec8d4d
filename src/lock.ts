/**
 * Single-writer ownership of a checkpoint through a lock file holding the owner's pid and
 * host. The same process may take a lock it holds again (counted); a lock whose owner
 * process is gone (same host, pid not alive) is taken over.
 */
import { randomBytes } from 'node:crypto';
import type nodeFs from 'node:fs';
import { hostname } from 'node:os';
import { CheckpointLockedError } from './errors.js';
import { onExit } from './hooks/exit.js';

type LockFs = Pick<
  typeof nodeFs,
  'openSync' | 'writeSync' | 'closeSync' | 'readFileSync' | 'renameSync' | 'unlinkSync'
>;

interface LockRecord {
  pid: number;
  host: string;
  since: string;
  token: string;
}

interface Held {
  count: number;
  token: string;
  fs: LockFs;
}

const held = new Map<string, Held>();
let exitHookInstalled = false;

/** True when a process with this pid exists (EPERM means it exists but is not ours). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(fs: LockFs, path: string): LockRecord | undefined {
  try {
    const record = JSON.parse(fs.readFileSync(path, 'utf8')) as LockRecord;
    return typeof record.pid === 'number' && typeof record.host === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}

function release(path: string): void {
  const entry = held.get(path);
  if (entry === undefined || --entry.count > 0) return;
  held.delete(path);
  if (readLock(entry.fs, path)?.token !== entry.token) return;
  try {
    entry.fs.unlinkSync(path);
  } catch {
    // Already gone: nothing to release.
  }
}

function releaseAllSync(): void {
  for (const [path, entry] of held) {
    entry.count = 1;
    release(path);
  }
}

/**
 * Takes the lock at `path` for checkpoint `name`. Throws CheckpointLockedError when another
 * live process holds it. Returns the release function (idempotent).
 */
export function acquireFileLock(path: string, name: string, fs: LockFs): () => void {
  const mine = held.get(path);
  if (mine !== undefined) {
    mine.count++;
    return once(() => release(path));
  }
  const record: LockRecord = {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = fs.openSync(path, 'wx', 0o600);
      try {
        fs.writeSync(fd, JSON.stringify(record));
      } finally {
        fs.closeSync(fd);
      }
      held.set(path, { count: 1, token: record.token, fs });
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        onExit(releaseAllSync);
      }
      return once(() => release(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = readLock(fs, path);
    if (owner === undefined) {
      // Being written by its creator right now, or garbage: look again shortly.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      if (attempt < 3) continue;
    } else if (owner.host !== record.host || isProcessAlive(owner.pid)) {
      if (owner.pid !== process.pid || owner.host !== record.host) {
        throw new CheckpointLockedError(
          `Checkpoint "${name}" is in use by process ${owner.pid} on ${owner.host} since ${owner.since} (lock ${path}). Stop that process, or delete the lock file if it is gone.`,
          owner,
        );
      }
    }
    takeOver(fs, path, owner);
  }
  throw new CheckpointLockedError(`Checkpoint "${name}" lock ${path} could not be taken`, {
    pid: 0,
    host: 'unknown',
  });
}

// Moves a stale lock aside and removes it. If another process took the lock over between our
// read and the rename, the moved file is not the one we judged stale: put it back.
function takeOver(fs: LockFs, path: string, stale: LockRecord | undefined): void {
  const aside = `${path}.stale-${process.pid}`;
  try {
    fs.renameSync(path, aside);
  } catch {
    return;
  }
  const moved = readLock(fs, aside);
  if (stale !== undefined && moved?.token !== stale.token) {
    try {
      fs.renameSync(aside, path);
    } catch {
      // Best effort: the next attempt reads whatever is there now.
    }
    return;
  }
  try {
    fs.unlinkSync(aside);
  } catch {
    // Already gone.
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
