/**
 * The default store: one file per generation in a folder.
 *
 *   <name>.ckpt, <name>.ckpt.1 …, journals, files moved aside, temp files and the lock:
 *   their names are built and recognised in ./file-layout.ts (#16.3).
 *
 * A save writes a temp file, fsyncs it, renames it over the latest, then fsyncs the folder:
 * the latest is always the complete old or the complete new file.
 *
 * Upgrade from 0.1 (#11.4): `<name>` is `safeFileName(name)`, whose hash grew from 32 to 64
 * bits. When a name has no files under its new file name but has some under 0.1's, the
 * generations whose stored name is this name are renamed to the new file names (their
 * journals with them), once, before anything else reads or writes them. Files of another
 * name that shared 0.1's file name stay where they are, for that name to adopt.
 *
 * Over 400 lines: the store is one closure over its folder and fs (listing, locking,
 * publishing, adoption, journals), whose parts share that state; names live in
 * ./file-layout.ts and descriptor I/O in ./file-io.ts.
 */
import nodeFs from 'node:fs';
import { join } from 'node:path';
import { isUnsealed, sealCheckpoint } from '../codec/container.js';
import { readHead } from '../codec/layout.js';
import { CheckpointError, CheckpointLockedError, StoreError } from '../errors.js';
import { JOURNAL_MAGIC } from '../journal.js';
import { acquireFileLock, confirmFileLock, holdsFileLock, isProcessAlive } from '../lock.js';
import { legacySafeFileName, safeFileName } from '../naming.js';
import { BUILT_IN } from '../writer/protocol.js';
import { fileJournal, IO_SLICE, openFileSource } from './file-io.js';
import {
  asideFile,
  generationFile,
  generationIndex,
  isJournalOf,
  isTakeoverMarker,
  journalEpoch,
  journalFile,
  latestFile,
  leftoverPid,
  lockFile,
  stagedPrevious,
  tempFile,
} from './file-layout.js';
import { formatWait, sleep } from './lease-wait.js';
import { readRegularFile, SAFE_READ_FLAGS } from './regular-file.js';
import type { CheckpointJournal, CheckpointStore, Generation, StoredJournal } from './store.js';
import { withTarget } from './thread-target.js';
import { requestWriteback, writebackPace } from './writeback.js';

/** The subset of node:fs the file store uses; pass a faulty one to test failures. */
export { openFileSource } from './file-io.js';
export type FileSystem = Pick<
  typeof nodeFs,
  | 'openSync'
  | 'writeSync'
  | 'fsyncSync'
  | 'closeSync'
  | 'renameSync'
  | 'linkSync'
  | 'unlinkSync'
  | 'readdirSync'
  | 'readFileSync'
  | 'readSync'
  | 'fstatSync'
  | 'mkdirSync'
> &
  // Optional: lets the check before each save cost one lstat (#11.3).
  Partial<Pick<typeof nodeFs, 'lstatSync'>>;

export interface FileStoreOptions {
  /** File system to use; node:fs by default. */
  fs?: FileSystem;
}

const MAX_WRITE_RETRIES = 100;
/** Longest header read to find a file's stored name (a huge `key`). */
const MAX_HEADER = 16 * 1024 * 1024;
/** Never follow a planted link, never block on a FIFO (#11.8). */
const PROBE_FLAGS =
  nodeFs.constants.O_RDONLY |
  (nodeFs.constants.O_NOFOLLOW ?? 0) |
  (nodeFs.constants.O_NONBLOCK ?? 0);

/** Stores checkpoints as files in `dir` (created 0700 on first save; files are 0600). */
export function fileStore(dir: string, options: FileStoreOptions = {}): CheckpointStore {
  return createFileStore(dir, options, false);
}

/**
 * The file store as the background thread builds it: it writes for a Checkpoint whose lock
 * the main thread of this process holds, and refuses to write once that lock is gone.
 */
export function backgroundFileStore(dir: string): CheckpointStore {
  return createFileStore(dir, {}, true);
}

function createFileStore(
  dir: string,
  options: FileStoreOptions,
  background: boolean,
): CheckpointStore {
  const fs = options.fs ?? nodeFs;
  const fileOf = (name: string) => join(dir, latestFile(safeFileName(name)));
  const lockOf = (name: string) => join(dir, lockFile(safeFileName(name)));

  function fail(action: string, name: string, where: string, err: unknown): CheckpointError {
    // Ours already (a lock held by another process, a file that is not a checkpoint).
    if (err instanceof CheckpointError) return err;
    const reason = err instanceof Error ? err.message : String(err);
    return new StoreError(`Cannot ${action} checkpoint "${name}" at ${where}: ${reason}`, {
      cause: err,
    });
  }

  function listDir(): string[] {
    try {
      return fs.readdirSync(dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
  }

  function syncDir(): void {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Before writing into the folder (#11.3): true if this process took the lock of `name`
   * again (its file was gone). Stores used without a lock (directly) are not checked.
   */
  function checkLock(name: string): boolean {
    const path = lockOf(name);
    if (!background && !holdsFileLock(path)) return false;
    try {
      return confirmFileLock(path, name, fs);
    } catch (err) {
      throw fail('lock', name, path, err);
    }
  }

  function generations(name: string): Generation[] {
    const entries = listDir();
    const found = generationsIn(entries, safeFileName(name));
    const legacy = legacySafeFileName(name);
    if (found.length > 0 || legacy === safeFileName(name)) return found;
    const old = generationsIn(entries, legacy);
    const journalsOld = entries.filter((e) => isJournalOf(e, legacy));
    return old.length > 0 || journalsOld.length > 0 ? adoptLegacy(name, old, journalsOld) : found;
  }

  function generationsIn(entries: string[], base: string): Generation[] {
    const found: Generation[] = [];
    for (const entry of entries) {
      const index = generationIndex(entry, base);
      if (index !== undefined) found.push({ index, location: join(dir, entry) });
    }
    return found.sort((a, b) => a.index - b.index);
  }

  // #11.4: moves 0.1's files of `name` to its new file name. Journals hold no name: they
  // follow an adopted generation, or come alone when 0.1 left no generation at all.
  function adoptLegacy(name: string, old: Generation[], oldJournals: string[]): Generation[] {
    const file = fileOf(name);
    const ours = old.filter((g) => storedName(g.location) === name);
    if (ours.length === 0 && old.length > 0) return [];
    const legacyBase = latestFile(legacySafeFileName(name));
    try {
      for (const g of ours) fs.renameSync(g.location, generationFile(file, g.index));
      for (const entry of oldJournals) {
        fs.renameSync(join(dir, entry), `${file}${entry.slice(legacyBase.length)}`);
      }
      syncDir();
    } catch (err) {
      throw fail('adopt the 0.1 files of', name, file, err);
    }
    return generationsIn(listDir(), safeFileName(name));
  }

  /** The name stored in the checkpoint file at `path`; undefined when that cannot be read. */
  function storedName(path: string): string | undefined {
    try {
      const fd = fs.openSync(path, PROBE_FLAGS);
      try {
        if (!fs.fstatSync(fd).isFile()) return undefined;
        const read = (end: number) => {
          const bytes = Buffer.alloc(end);
          return bytes.subarray(0, fs.readSync(fd, bytes, 0, end, 0));
        };
        const head = readHead(read, path, MAX_HEADER);
        const stored = head.header.meta.name;
        return typeof stored === 'string' ? stored : undefined;
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return undefined; // unreadable or corrupt: not known to be ours, so left in place
    }
  }

  // Publishes `temp` as the latest generation and makes that durable (folder fsync). The
  // previous latest is kept through a hard link taken before the rename, and older
  // generations shift only once the new file is in place: a failed rename leaves every
  // generation as it was. Where hard links are not supported, the previous latest is renamed
  // to `.1` first (a crash in between leaves `.1`).
  function publish(name: string, file: string, temp: string, keep: number): void {
    const existing = generations(name);
    const held = holdGenerations(existing);
    let renamed = false;
    let shifted = false;
    try {
      shiftGenerations(existing, file, temp, keep, () => {
        renamed = true;
      });
      shifted = true;
      syncDir();
    } catch (err) {
      // Before the rename, or with the folder gone, nothing new is in place.
      if (!renamed || (shifted && isErrno(err, 'ENOENT'))) throw err;
      // After it, the new file is what restore() loads: this save did not simply fail (a
      // retry is still right). Older generations that failed to shift: flush the folder.
      const durable = !shifted && succeeds(syncDir);
      const reason = err instanceof Error ? err.message : String(err);
      const what = shifted
        ? 'its folder could not be flushed to disk'
        : 'the older generations could not be shifted';
      const state = durable
        ? 'the new save is in place, durable, and what restore() loads'
        : 'the new save is in place and restore() loads it, but a power loss now could undo it';
      throw new StoreError(
        `Checkpoint "${name}" was saved to ${file}, but ${what} (${reason}): ${state}`,
        {
          cause: err,
        },
      );
    } finally {
      // #17.1: after the folder's fsync, so the dropped generation's blocks are freed (and,
      // on a file system mounted with `discard`, trimmed) in a later journal commit than the
      // one this save waits for.
      releaseLater(held);
    }
  }

  function shiftGenerations(
    existing: Generation[],
    file: string,
    temp: string,
    keep: number,
    renamed: () => void,
  ): void {
    for (const g of existing) if (g.index >= keep) fs.unlinkSync(g.location);
    const hasLatest = existing.some((g) => g.index === 0);
    const staged = stagedPrevious(file);
    let linked = false;
    if (keep >= 2 && hasLatest) {
      ignoreErrors(() => fs.unlinkSync(staged));
      try {
        fs.linkSync(file, staged);
        linked = true;
      } catch (err) {
        if (!isErrno(err, 'EPERM') && !isErrno(err, 'ENOTSUP') && !isErrno(err, 'EXDEV')) throw err;
      }
    }
    try {
      if (keep >= 2 && hasLatest && !linked) shiftOlder(existing, file, keep);
      if (keep >= 2 && hasLatest && !linked) fs.renameSync(file, generationFile(file, 1));
      fs.renameSync(temp, file);
    } catch (err) {
      if (linked) ignoreErrors(() => fs.unlinkSync(staged));
      throw err;
    }
    renamed();
    if (linked) {
      shiftOlder(existing, file, keep);
      fs.renameSync(staged, generationFile(file, 1));
      // rename() does nothing when both names are links to one file (`.1` was already the
      // previous latest, after a crash): the staged name then stays, so remove it.
      ignoreErrors(() => fs.unlinkSync(staged));
    }
  }

  // #17.1: the rename or unlink that drops the oldest generation would free its blocks
  // in that call (~40 ms for 100 MB on ext4, on the save's path). Holding the files open
  // across publish moves that work to the close, which runs on libuv's thread pool later.
  // Only with node:fs itself (a custom fs is for fault injection).
  function holdGenerations(existing: Generation[]): number[] {
    // Windows refuses to rename over a file open elsewhere.
    if (options.fs !== undefined || process.platform === 'win32') return [];
    const held: number[] = [];
    for (const g of existing) {
      try {
        held.push(nodeFs.openSync(g.location, PROBE_FLAGS));
      } catch {}
    }
    return held;
  }

  function shiftOlder(existing: Generation[], file: string, keep: number): void {
    for (let index = keep - 1; index >= 2; index--) {
      if (existing.some((g) => g.index === index - 1)) {
        fs.renameSync(generationFile(file, index - 1), generationFile(file, index));
      }
    }
  }

  /** Writes all of `data`, in slices of at most `slice` bytes, telling `wrote` of each. */
  function writeAll(
    fd: number,
    data: Uint8Array,
    slice = IO_SLICE,
    wrote?: (bytes: number) => void,
  ): void {
    let offset = 0;
    let retries = 0;
    while (offset < data.byteLength) {
      try {
        // At most 1 GiB per call: node:fs refuses lengths above 2^31 - 1 (#11.9).
        const n = fs.writeSync(fd, data, offset, Math.min(data.byteLength - offset, slice));
        offset += n;
        wrote?.(n);
      } catch (err) {
        // Non-blocking descriptors (rare for files) may ask to retry; bounded, as sonic-boom does.
        if (!isErrno(err, 'EAGAIN') || ++retries > MAX_WRITE_RETRIES) throw err;
      }
    }
  }

  function journals(name: string): { epoch: number; location: string }[] {
    const base = safeFileName(name);
    const found: { epoch: number; location: string }[] = [];
    for (const entry of listDir()) {
      const epoch = journalEpoch(entry, base);
      if (epoch !== undefined) found.push({ epoch, location: join(dir, entry) });
    }
    return found.sort((a, b) => a.epoch - b.epoch);
  }

  const journal: CheckpointJournal = {
    read(name) {
      return journals(name).map(({ epoch, location }): StoredJournal => {
        const failed = (err: unknown) => fail('read the journal of', name, location, err);
        return { epoch, location, bytes: readRegularFile(location, location, failed, fs) };
      });
    },
    create(name, epoch) {
      const location = journalFile(fileOf(name), epoch);
      try {
        checkLock(name);
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const fd = fs.openSync(location, 'ax', 0o600);
        writeAll(fd, JOURNAL_MAGIC);
        fs.fsyncSync(fd);
        syncDir();
        return fileJournal(fd, (err) => fail('append to the journal of', name, location, err));
      } catch (err) {
        throw fail('create the journal of', name, location, err);
      }
    },
    drop(name, epoch) {
      for (const j of journals(name)) {
        if (j.epoch < epoch) ignoreErrors(() => fs.unlinkSync(j.location));
      }
    },
    lastModified(name) {
      let latest: number | undefined;
      for (const j of journals(name)) {
        try {
          const fd = fs.openSync(j.location, SAFE_READ_FLAGS);
          try {
            latest = Math.max(latest ?? 0, fs.fstatSync(fd).mtimeMs);
          } finally {
            fs.closeSync(fd);
          }
        } catch {}
      }
      return latest;
    },
  };

  const store: CheckpointStore = {
    journal,
    sealsChecksum: true,
    locate: fileOf,
    generations,
    checkLock,
    read(name, generation) {
      const where = generation.location;
      return readRegularFile(where, where, (err) => fail('read', name, where, err), fs);
    },
    open(name, generation) {
      const where = generation.location;
      return openFileSource(where, where, (err) => fail('read', name, where, err), fs);
    },
    write(name, parts, keep) {
      const file = fileOf(name);
      const temp = tempFile(file);
      let fd: number | undefined;
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        fd = fs.openSync(temp, 'wx', 0o600);
        const last = parts.length - 1;
        const unsealed = isUnsealed(parts);
        const pace =
          options.fs === undefined && unsealed ? writebackPace(temp, parts, IO_SLICE) : undefined;
        for (let i = 0; i < last; i++) writeAll(fd, parts[i]!, pace?.slice, pace?.wrote);
        if (unsealed) {
          // #17.1: the checksum goes in the trailer: computed while the disk already
          // flushes the bytes before it, and written after them.
          if (pace !== undefined) requestWriteback(temp, true);
          sealCheckpoint(parts);
        }
        if (last >= 0) writeAll(fd, parts[last]!);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fd = undefined;
        // Last moment before the new file becomes visible: is this folder still ours?
        checkLock(name);
        publish(name, file, temp, keep);
      } catch (err) {
        if (fd !== undefined) ignoreErrors(() => fs.closeSync(fd!));
        ignoreErrors(() => fs.unlinkSync(temp));
        throw fail('save', name, file, err);
      }
    },
    remove(name) {
      checkLock(name);
      const all = [...generations(name), ...journals(name)];
      try {
        for (const g of all) fs.unlinkSync(g.location);
        if (all.length > 0) syncDir();
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw fail('delete', name, fileOf(name), err);
      }
    },
    moveAside(name, tag) {
      checkLock(name);
      const moved: string[] = [];
      try {
        for (const g of generations(name)) {
          const target = asideFile(g.location, tag);
          fs.renameSync(g.location, target);
          moved.push(target);
        }
        // Journals go with the state they belong to.
        for (const j of journals(name)) {
          fs.renameSync(j.location, asideFile(j.location, tag));
          moved.push(asideFile(j.location, tag));
        }
        if (moved.length > 0) syncDir();
      } catch (err) {
        throw fail('move aside', name, fileOf(name), err);
      }
      return moved;
    },
    lock(name, { wait = 0, notice } = {}) {
      const path = lockOf(name);
      // Option lockWait: wait for a live holder to let go (#14.3); a dead one is taken over.
      const deadline = Date.now() + wait;
      for (let noticed = false; ; noticed = true) {
        try {
          fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
          return acquireFileLock(path, name, fs);
        } catch (err) {
          const left = deadline - Date.now();
          if (!(err instanceof CheckpointLockedError) || left <= 0)
            throw fail('lock', name, path, err);
          if (!noticed) {
            notice?.(
              `"${name}" is locked by pid ${err.pid}@${err.host}: waiting up to ${formatWait(wait)} for it to let go (${path})`,
            );
          }
          sleep(Math.min(100, left));
        }
      }
    },
    cleanup(name) {
      const base = safeFileName(name);
      let entries: string[];
      try {
        entries = listDir();
      } catch (err) {
        throw fail('clean up', name, dir, err);
      }
      for (const entry of entries) {
        const pid = leftoverPid(entry, base);
        const dead = pid !== undefined && (pid === process.pid || !isProcessAlive(pid));
        // Takeover markers of a process killed while taking the lock over: the lock they were
        // for was replaced since (this process holds it now), so none is in use any more.
        if (dead || (isTakeoverMarker(entry, base) && holdsFileLock(lockOf(name)))) {
          ignoreErrors(() => fs.unlinkSync(join(dir, entry)));
        }
      }
    },
  };
  // Without a custom fs the store can be rebuilt in the background thread, which then
  // does the writing; a custom fs (fault injection) keeps writes on the calling thread.
  if (options.fs !== undefined) return store;
  return withTarget(store, { module: BUILT_IN.file, name: 'backgroundFileStore', args: [dir] });
}

/** Closes descriptors on libuv's thread pool (see holdGenerations). */
function releaseLater(fds: number[]): void {
  for (const fd of fds) nodeFs.close(fd, () => {});
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}

/** Runs `fn`; false if it threw. */
function succeeds(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

function ignoreErrors(fn: () => void): void {
  try {
    fn();
  } catch {
    // Best-effort cleanup: the original failure is what the caller must see.
  }
}
