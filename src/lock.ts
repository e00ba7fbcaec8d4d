/**
 * Single-writer ownership of a checkpoint through a lock file `<name>.lock` holding its
 * owner's record: pid, host, process start time (Linux) and a random token. The same
 * process may take a lock it holds again (counted).
 *
 * The protocol (#11.2): at most one owner at any time, whatever the file held before.
 * - A lock appears complete or not at all: its record is written to a temp file, fsynced,
 *   then hard-linked to `<name>.lock`. link() fails if the name exists, so creating is
 *   exclusive, and no rival ever reads a lock half-written (nor finds one empty after a
 *   power cut: the bytes are durable before the name is).
 * - Reading a lock never blocks and stays small (#11.8): opened without following a link and
 *   without blocking, read only if a regular file of at most 4 KiB. Anything else, and any
 *   record that does not parse, is garbage.
 * - A lock whose owner lives is respected, and so is every lock of another host (its owner
 *   cannot be checked from here). A lock of this host whose pid is gone, or now belongs to a
 *   process started at another time (pid reuse), is stale.
 * - No lock is ever deleted to take it over. A stale or garbage lock X is replaced by
 *   rename() of a complete new lock over it, and only by the process holding X's takeover
 *   marker `<name>.lock.takeover-<id>`, where the id hashes X's inode, mtime and bytes, so
 *   every racer that judged X names the same marker. The marker is created exclusively like
 *   a lock. Its holder reads the lock again and replaces it only if it is still X. While the
 *   marker is held the name can change only through its holder: link() fails while X exists,
 *   X's owner is gone, and any other replacement of X needs the marker. A rival's fresh lock
 *   is not X, so it is never replaced. The marker is removed after the rename; a late racer
 *   that creates it again then finds the lock is no longer X and backs off.
 * - A marker left by a process killed mid-takeover is a stale lock in its turn (owner dead,
 *   or older than 10 s when written by another host) and is taken over the same way, one
 *   level down.
 * - Garbage left forever (a power cut before 0.2, a hand edit, a planted FIFO or symlink):
 *   where hard links work no lock is ever seen half-written, so garbage is taken over at
 *   once. Where they do not (some network and FAT file systems), a lock is created empty then
 *   written, so garbage is taken over only once it is 2 s old by mtime or has been seen
 *   unchanged for 2 s.
 * - Release (close, exit) deletes the lock only while it holds this owner's token.
 * - Before every save the store checks the lock is still ours (#11.3, `confirmFileLock`):
 *   one lstat when it is the very file we created (device, inode, change time, size), else
 *   its token is read. If its file is gone (folder deleted or replaced), this owner takes it
 *   again with the same record by the same protocol, so a process that got there first is
 *   respected; another live owner's lock refuses the save.
 *
 * Over 400 lines: the lock protocol (take, confirm, takeover markers, release) is one
 * state machine.
 */
import { createHash, randomBytes } from 'node:crypto';
import nodeFs from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { CheckpointLockedError, StoreError, UNKNOWN_OWNER } from './errors.js';
import { onExit } from './hooks/exit.js';
import { tempFile } from './store/file-layout.js';
import { SAFE_READ_FLAGS } from './store/regular-file.js';

export type LockFs = Pick<
  typeof nodeFs,
  | 'openSync'
  | 'writeSync'
  | 'fsyncSync'
  | 'readSync'
  | 'fstatSync'
  | 'closeSync'
  | 'renameSync'
  | 'unlinkSync'
  | 'linkSync'
  | 'mkdirSync'
> &
  Partial<Pick<typeof nodeFs, 'lstatSync'>>;

interface LockRecord {
  pid: number;
  host: string;
  since: string;
  token: string;
  /** Start time of the owner process, where the system tells it (Linux). */
  start?: string;
}

/** What is at a lock's name: nothing, a record, or garbage; `id` names exactly that file. */
type Seen =
  | { kind: 'missing' }
  | { kind: 'record'; record: LockRecord; id: string; mtimeMs: number }
  | { kind: 'garbage'; id: string; mtimeMs: number | undefined };

type Claim = { kind: 'taken' } | { kind: 'held'; owner: LockRecord } | { kind: 'retry' };

interface Held {
  count: number;
  record: LockRecord;
  fs: LockFs;
  /** Device, inode, change time and size of our lock file, once seen: one lstat tells it is still there. */
  stamp: string | undefined;
}

/** A lock file larger than this is garbage: a record is ~150 bytes. */
const MAX_LOCK_BYTES = 4096;
/** How long taking a lock may keep meeting takeovers in progress before it gives up. */
const TAKE_TIMEOUT_MS = 10_000;
/** Without hard links: how old garbage must be before it is taken over. */
const SETTLE_MS = 2_000;
/** A takeover marker of another host older than this was left by a dead process. */
const MARKER_STALE_MS = 10_000;
/** Markers of markers: a deeper chain means something else is wrong; wait instead. */
const MAX_MARKER_DEPTH = 3;

const TAKEN: Claim = { kind: 'taken' };
const RETRY: Claim = { kind: 'retry' };

const held = new Map<string, Held>();
/** Folders where hard links work (probed once when garbage is found). */
const linksWork = new Map<string, boolean>();
let exitHookInstalled = false;
let ownStart: string | undefined | null = null;

/** True when a process with this pid exists (EPERM means it exists but is not ours). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
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
  const start = startOfThisProcess();
  if (start !== undefined) record.start = start;
  take(fs, path, name, record);
  held.set(path, { count: 1, record, fs, stamp: stampOf(fs, path) });
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    onExit(releaseAllSync);
  }
  return once(() => release(path));
}

/** True when this thread holds the lock at `path`. */
export function holdsFileLock(path: string): boolean {
  return held.has(path);
}

/**
 * Before a save (#11.3): makes sure this process still owns the lock at `path`. The thread
 * that took it compares tokens, and takes it again if its file is gone or not ours (its
 * folder was deleted or replaced) and no other live process holds it: returns true then. Another thread of this
 * process (the background writer) compares pid, host and start time, and refuses to write
 * (StoreError) if the lock is gone or not ours. Another live owner: CheckpointLockedError.
 */
export function confirmFileLock(path: string, name: string, fs: LockFs): boolean {
  const entry = held.get(path);
  // The same file as when we took it (same inode and change time): ours, for one lstat.
  if (entry?.stamp !== undefined && stampOf(fs, path) === entry.stamp) return false;
  const seen = look(fs, path);
  if (entry !== undefined) {
    const ours = seen.kind === 'record' && seen.record.token === entry.record.token;
    if (!ours) {
      fs.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      take(fs, path, name, entry.record);
    }
    entry.stamp = stampOf(fs, path);
    return !ours;
  }
  if (seen.kind === 'record') {
    const { record } = seen;
    if (record.pid === process.pid && record.host === hostname()) {
      if (record.start === undefined || record.start === startOfThisProcess()) return false;
    } else if (!isStale(seen, hostname(), false)) {
      throw lockedError(name, path, record);
    }
  }
  throw new StoreError(
    `The lock of checkpoint "${name}" (${path}) is ${seen.kind === 'missing' ? 'gone' : 'not ours'}: was its folder deleted or replaced? This save is not written; the next one takes the lock again if it is free`,
  );
}

/** The owner named by the lock at `path`, if it holds a readable record (for the CLI). */
export function readLockOwner(path: string): { pid: number; host: string } | undefined {
  try {
    const seen = look(nodeFs, path);
    return seen.kind === 'record' ? seen.record : undefined;
  } catch {
    return undefined;
  }
}

/** What identifies the file at `path` (no link followed), if the fs can tell; else undefined. */
function stampOf(fs: LockFs, path: string): string | undefined {
  try {
    const stat = fs.lstatSync?.(path, { bigint: true });
    return stat && `${stat.dev}:${stat.ino}:${stat.ctimeNs}:${stat.size}`;
  } catch {
    return undefined;
  }
}

function release(path: string): void {
  const entry = held.get(path);
  if (entry === undefined || --entry.count > 0) return;
  held.delete(path);
  try {
    const seen = look(entry.fs, path);
    if (seen.kind === 'record' && seen.record.token === entry.record.token) {
      entry.fs.unlinkSync(path);
    }
  } catch {
    // Gone or unreadable: nothing of ours to release.
  }
}

function releaseAllSync(): void {
  for (const [path, entry] of held) {
    entry.count = 1;
    release(path);
  }
}

function lockedError(name: string, path: string, owner: LockRecord): CheckpointLockedError {
  return new CheckpointLockedError(
    `Checkpoint "${name}" is in use by process ${owner.pid} on ${owner.host} since ${owner.since} (lock ${path}). Stop that process, or delete the lock file if it is gone.`,
    owner,
  );
}

/** Takes `path` for `record`, waiting out takeovers in progress; throws if a live owner holds it. */
function take(fs: LockFs, path: string, name: string, record: LockRecord): void {
  const firstSeen = new Map<string, number>();
  const deadline = Date.now() + TAKE_TIMEOUT_MS;
  for (let round = 1; ; round++) {
    const claim = claimName(fs, path, record, firstSeen, 0);
    if (claim.kind === 'taken') return;
    if (claim.kind === 'held') throw lockedError(name, path, claim.owner);
    if (Date.now() > deadline) {
      throw new CheckpointLockedError(
        `Checkpoint "${name}" lock ${path} could not be taken within ${TAKE_TIMEOUT_MS / 1000} s: other processes kept taking it over (see the ${path}.takeover-* files)`,
        UNKNOWN_OWNER,
      );
    }
    sleep(Math.min(round, 20));
  }
}

/** One attempt at owning `path` (a lock, or a takeover marker when depth > 0). */
function claimName(
  fs: LockFs,
  path: string,
  record: LockRecord,
  firstSeen: Map<string, number>,
  depth: number,
): Claim {
  if (create(fs, path, record)) return TAKEN;
  const seen = look(fs, path);
  if (seen.kind === 'missing') return RETRY;
  if (seen.kind === 'record' && !isStale(seen, record.host, depth > 0)) {
    return { kind: 'held', owner: seen.record };
  }
  if (seen.kind === 'garbage' && !hasSettled(fs, path, seen, firstSeen)) return RETRY;
  if (depth >= MAX_MARKER_DEPTH) return RETRY;
  return replace(fs, path, seen, record, firstSeen, depth);
}

/** Replaces `seen` (stale or garbage) at `path` by our lock, if we hold its takeover marker. */
function replace(
  fs: LockFs,
  path: string,
  seen: Exclude<Seen, { kind: 'missing' }>,
  record: LockRecord,
  firstSeen: Map<string, number>,
  depth: number,
): Claim {
  const marker = `${path}.takeover-${seen.id}`;
  // Held by a live racer: it is replacing the lock now; look again shortly.
  if (claimName(fs, marker, record, firstSeen, depth + 1).kind !== 'taken') return RETRY;
  try {
    const now = look(fs, path);
    if (now.kind === 'missing' || now.id !== seen.id) return RETRY;
    const temp = writeTemp(fs, path, record);
    try {
      fs.renameSync(temp, path);
    } catch (err) {
      ignoreErrors(() => fs.unlinkSync(temp));
      throw err;
    }
    return TAKEN;
  } finally {
    ignoreErrors(() => fs.unlinkSync(marker));
  }
}

// Only a lock of this host can be judged: its process is gone, or its pid now belongs to
// another process (pids are reused, often and soon in containers). A takeover marker of
// another host is held for milliseconds: an old one was left by a dead process.
function isStale(
  seen: Extract<Seen, { kind: 'record' }>,
  host: string,
  isMarker: boolean,
): boolean {
  const owner = seen.record;
  if (owner.host !== host) return isMarker && Date.now() - seen.mtimeMs > MARKER_STALE_MS;
  // Our own pid on a name we do not hold: left by an earlier process that had this pid.
  if (owner.pid === process.pid || !isProcessAlive(owner.pid)) return true;
  return owner.start !== undefined && owner.start !== processStart(owner.pid);
}

/** Garbage may be taken over: at once where hard links work, else once it stopped changing. */
function hasSettled(
  fs: LockFs,
  path: string,
  seen: Extract<Seen, { kind: 'garbage' }>,
  firstSeen: Map<string, number>,
): boolean {
  if (hardLinksWork(fs, path)) return true;
  const now = Date.now();
  if (seen.mtimeMs !== undefined && now - seen.mtimeMs >= SETTLE_MS) return true;
  const first = firstSeen.get(seen.id) ?? now;
  firstSeen.set(seen.id, first);
  return now - first >= SETTLE_MS;
}

function hardLinksWork(fs: LockFs, path: string): boolean {
  const dir = dirname(path);
  let works = linksWork.get(dir);
  if (works === undefined) {
    const probe = tempFile(path);
    fs.closeSync(fs.openSync(probe, 'wx', 0o600));
    const link = tempFile(path);
    try {
      fs.linkSync(probe, link);
      fs.unlinkSync(link);
      works = true;
    } catch (err) {
      if (!isNoLinks(err)) throw err;
      works = false;
    } finally {
      ignoreErrors(() => fs.unlinkSync(probe));
    }
    linksWork.set(dir, works);
  }
  return works;
}

/** What is at `path` now, read without blocking and at most 4 KiB. */
function look(fs: LockFs, path: string): Seen {
  let fd: number;
  try {
    fd = fs.openSync(path, SAFE_READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'missing' };
    // A symbolic link (never followed) or a socket: garbage, known by its kind alone.
    if (code === 'ELOOP' || code === 'ENXIO') {
      return { kind: 'garbage', id: digest(code), mtimeMs: undefined };
    }
    throw err;
  }
  try {
    const stat = fs.fstatSync(fd);
    const file = `${stat.dev}:${stat.ino}:${stat.mtimeMs}:${stat.size}`;
    if (!stat.isFile() || stat.size > MAX_LOCK_BYTES) {
      return { kind: 'garbage', id: digest(file), mtimeMs: stat.mtimeMs };
    }
    const bytes = Buffer.alloc(MAX_LOCK_BYTES + 1);
    let length = 0;
    for (let n = 1; n > 0 && length < bytes.byteLength; length += n) {
      n = fs.readSync(fd, bytes, length, bytes.byteLength - length, length);
    }
    const content = bytes.subarray(0, length);
    const id = digest(file, content);
    const record = length > MAX_LOCK_BYTES ? undefined : parseRecord(content);
    return record === undefined
      ? { kind: 'garbage', id, mtimeMs: stat.mtimeMs }
      : { kind: 'record', record, id, mtimeMs: stat.mtimeMs };
  } finally {
    fs.closeSync(fd);
  }
}

function parseRecord(bytes: Uint8Array): LockRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return undefined;
  }
  const r = value as Partial<LockRecord> | null;
  if (typeof r !== 'object' || r === null || !Number.isSafeInteger(r.pid) || r.pid! <= 0) {
    return undefined;
  }
  if (typeof r.host !== 'string') return undefined;
  const record: LockRecord = {
    pid: r.pid!,
    host: r.host,
    since: typeof r.since === 'string' ? r.since : 'an unknown time',
    token: typeof r.token === 'string' ? r.token : '',
  };
  if (typeof r.start === 'string') record.start = r.start;
  return record;
}

function digest(...parts: (string | Uint8Array)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex').slice(0, 16);
}

/** Creates `path` holding `record`, complete, unless it exists; false if it does. */
function create(fs: LockFs, path: string, record: LockRecord): boolean {
  const temp = writeTemp(fs, path, record);
  try {
    fs.linkSync(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    if (!isNoLinks(err)) throw err;
    // No hard links here: exclusive create, then write (briefly empty; see the header).
    return createExclusive(fs, path, record);
  } finally {
    ignoreErrors(() => fs.unlinkSync(temp));
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
    writeAll(fs, fd, Buffer.from(JSON.stringify(record)));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** A temp file next to `path` holding `record`, written and fsynced; returns its path. */
function writeTemp(fs: LockFs, path: string, record: LockRecord): string {
  const temp = tempFile(path);
  const fd = fs.openSync(temp, 'wx', 0o600);
  try {
    writeAll(fs, fd, Buffer.from(JSON.stringify(record)));
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    ignoreErrors(() => fs.unlinkSync(temp));
    throw err;
  }
  fs.closeSync(fd);
  return temp;
}

function writeAll(fs: LockFs, fd: number, bytes: Buffer): void {
  for (let done = 0; done < bytes.byteLength; ) {
    done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
  }
}

function isNoLinks(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP';
}

/** Start time of a process (Linux: clock ticks since boot, from /proc), to tell pid reuse. */
function processStart(pid: number): string | undefined {
  try {
    const stat = nodeFs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function startOfThisProcess(): string | undefined {
  if (ownStart === null) ownStart = processStart(process.pid);
  return ownStart;
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

function ignoreErrors(fn: () => void): void {
  try {
    fn();
  } catch {
    // Best-effort cleanup.
  }
}
