/**
 * Single-writer ownership of a checkpoint through a lock file holding the owner's pid and
 * host. The same process may take a lock it holds again (counted); a lock whose owner
 * process is gone (same host, pid not alive) is taken over.
 */
import { randomBytes } from 'node:crypto';
import type nodeFs from 'node:fs';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CheckpointLockedError } from './errors.js';
import { onExit } from './hooks/exit.js';

type LockFs = Pick<
  typeof nodeFs,
  'openSync' | 'writeSync' | 'closeSync' | 'readFileSync' | 'renameSync' | 'unlinkSync' | 'linkSync'
>;

interface LockRecord {
  pid: number;
  host: string;
  since: string;
  token: string;
  /** Start time of the owner process, where the system tells it (Linux). */
  start?: string;
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
  const start = processStart(process.pid);
  if (start !== undefined) record.start = start;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreate(fs, path, record)) {
      held.set(path, { count: 1, token: record.token, fs });
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        onExit(releaseAllSync);
      }
      return once(() => release(path));
    }
    const owner = readLock(fs, path);
    if (owner === undefined) {
      // Unreadable: vanished meanwhile, or garbage left by hand. Look again, then take over.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      if (attempt < 3) continue;
    } else if (!isStale(owner, record.host)) {
      throw new CheckpointLockedError(
        `Checkpoint "${name}" is in use by process ${owner.pid} on ${owner.host} since ${owner.since} (lock ${path}). Stop that process, or delete the lock file if it is gone.`,
        owner,
      );
    }
    takeOver(fs, path, owner);
  }
  throw new CheckpointLockedError(`Checkpoint "${name}" lock ${path} could not be taken`, {
    pid: 0,
    host: 'unknown',
  });
}

// The lock appears complete or not at all: written to a temp file, then linked into place
// (link fails if the name exists, where a plain create would expose an empty file).
function tryCreate(fs: LockFs, path: string, record: LockRecord): boolean {
  const temp = `${path}.tmp-${process.pid}-${record.token}`;
  const fd = fs.openSync(temp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(record));
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(temp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP') throw err;
    // No hard links here (some network or FAT file systems): exclusive create instead.
    return createExclusive(fs, path, record);
  } finally {
    try {
      fs.unlinkSync(temp);
    } catch {
      // Already gone.
    }
  }
}

function createExclusive(fs: LockFs, path: string, record: LockRecord): boolean {
  let fd: number;
  try {
    fd = fs.openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, JSON.stringify(record));
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

// Only a lock of this host can be judged: its process is gone, or its pid now belongs to
// another process (pids are reused, often and soon in containers).
function isStale(owner: LockRecord, host: string): boolean {
  if (owner.host !== host) return false;
  // Our own pid on a lock we do not hold: left by an earlier process that had this pid.
  if (owner.pid === process.pid || !isProcessAlive(owner.pid)) return true;
  return owner.start !== undefined && owner.start !== processStart(owner.pid);
}

/** Start time of a process (Linux: clock ticks since boot, from /proc), to tell pid reuse. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

// Moves a stale lock aside and removes it. If another process replaced it between our read
// and the rename, the moved file is not the one we judged stale: put it back with link(),
// which, unlike rename(), cannot overwrite a lock created meanwhile.
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
      fs.linkSync(aside, path);
    } catch {
      // A newer lock is in place: the next attempt reads it.
    }
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
