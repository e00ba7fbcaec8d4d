/**
 * The default store: one file per generation in a folder.
 *
 *   <name>.ckpt          latest generation
 *   <name>.ckpt.1 …      older generations (`keep` in all)
 *   <name>.ckpt.<tag>    moved aside (expired, other version); never overwritten
 *   <name>.ckpt.tmp-…    a save in progress (removed at start if its writer is gone)
 *   <name>.lock          single-writer lock
 *   <name>.ckpt.journal-<n>  journals of finished steps (`once()`), folded in by saves
 *
 * A save writes a temp file, fsyncs it, renames it over the latest, then fsyncs the folder:
 * the latest is always the complete old or the complete new file.
 */
import { randomBytes } from 'node:crypto';
import nodeFs from 'node:fs';
import { join } from 'node:path';
import type { ByteSource } from '../codec/container.js';
import { CorruptCheckpointError, StoreError } from '../errors.js';
import { JOURNAL_MAGIC } from '../journal.js';
import { acquireFileLock, isProcessAlive } from '../lock.js';
import { safeFileName } from '../naming.js';
import { BUILT_IN } from '../writer/protocol.js';
import type {
  CheckpointJournal,
  CheckpointStore,
  Generation,
  JournalFile,
  StoredJournal,
} from './store.js';

/** The subset of node:fs the file store uses; pass a faulty one to test failures. */
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
>;

export interface FileStoreOptions {
  /** File system to use; node:fs by default. */
  fs?: FileSystem;
}

const EXTENSION = '.ckpt';
const MAX_WRITE_RETRIES = 100;

/** Stores checkpoints as files in `dir` (created 0700 on first save; files are 0600). */
export function fileStore(dir: string, options: FileStoreOptions = {}): CheckpointStore {
  const fs = options.fs ?? nodeFs;
  const fileOf = (name: string) => join(dir, safeFileName(name) + EXTENSION);
  const generationPath = (file: string, index: number) => (index === 0 ? file : `${file}.${index}`);

  function fail(action: string, name: string, where: string, err: unknown): StoreError {
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

  function generations(name: string): Generation[] {
    const base = safeFileName(name) + EXTENSION;
    const found: Generation[] = [];
    for (const entry of listDir()) {
      if (entry === base) found.push({ index: 0, location: join(dir, entry) });
      else if (entry.startsWith(`${base}.`)) {
        const rest = entry.slice(base.length + 1);
        if (/^[1-9]\d{0,5}$/.test(rest))
          found.push({ index: Number(rest), location: join(dir, entry) });
      }
    }
    return found.sort((a, b) => a.index - b.index);
  }

  // Publishes `temp` as the latest generation. The previous latest is kept through a hard
  // link taken before the rename, and older generations shift only once the new file is in
  // place: a failed rename leaves every generation as it was. Where hard links are not
  // supported, the previous latest is renamed to `.1` first (a crash in between leaves `.1`).
  function publish(name: string, file: string, temp: string, keep: number): void {
    const existing = generations(name);
    for (const g of existing) if (g.index >= keep) fs.unlinkSync(g.location);
    const hasLatest = existing.some((g) => g.index === 0);
    const staged = `${file}.1.tmp-${process.pid}`;
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
      if (keep >= 2 && hasLatest && !linked) fs.renameSync(file, `${file}.1`);
      fs.renameSync(temp, file);
    } catch (err) {
      if (linked) ignoreErrors(() => fs.unlinkSync(staged));
      throw err;
    }
    if (linked) {
      shiftOlder(existing, file, keep);
      fs.renameSync(staged, `${file}.1`);
      // rename() does nothing when both names are links to one file (`.1` was already the
      // previous latest, after a crash): the staged name then stays, so remove it.
      ignoreErrors(() => fs.unlinkSync(staged));
    }
  }

  function shiftOlder(existing: Generation[], file: string, keep: number): void {
    for (let index = keep - 1; index >= 2; index--) {
      if (existing.some((g) => g.index === index - 1)) {
        fs.renameSync(generationPath(file, index - 1), generationPath(file, index));
      }
    }
  }

  function writeAll(fd: number, data: Uint8Array): void {
    let offset = 0;
    let retries = 0;
    while (offset < data.byteLength) {
      try {
        offset += fs.writeSync(fd, data, offset, data.byteLength - offset);
      } catch (err) {
        // Non-blocking descriptors (rare for files) may ask to retry; bounded, as sonic-boom does.
        if (!isErrno(err, 'EAGAIN') || ++retries > MAX_WRITE_RETRIES) throw err;
      }
    }
  }

  function journals(name: string): { epoch: number; location: string }[] {
    const prefix = `${safeFileName(name)}${EXTENSION}.journal-`;
    const found: { epoch: number; location: string }[] = [];
    for (const entry of listDir()) {
      if (!entry.startsWith(prefix)) continue;
      const rest = entry.slice(prefix.length);
      if (/^(?:0|[1-9]\d{0,15})$/.test(rest)) {
        found.push({ epoch: Number(rest), location: join(dir, entry) });
      }
    }
    return found.sort((a, b) => a.epoch - b.epoch);
  }

  const journal: CheckpointJournal = {
    read(name) {
      return journals(name).map(({ epoch, location }): StoredJournal => {
        try {
          return { epoch, location, bytes: fs.readFileSync(location) };
        } catch (err) {
          throw fail('read the journal of', name, location, err);
        }
      });
    },
    create(name, epoch) {
      const location = `${fileOf(name)}.journal-${epoch}`;
      try {
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
          const fd = fs.openSync(j.location, 'r');
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

  return {
    journal,
    // Without a custom fs the store can be rebuilt in the background thread, which then
    // does the writing; a custom fs (fault injection) keeps writes on the calling thread.
    ...(options.fs === undefined
      ? { target: { module: BUILT_IN.file, name: 'fileStore', args: [dir] } }
      : {}),
    locate: fileOf,
    generations,
    read(name, generation) {
      try {
        return fs.readFileSync(generation.location);
      } catch (err) {
        throw fail('read', name, generation.location, err);
      }
    },
    open(name, generation) {
      const where = generation.location;
      return openFileSource(where, where, (err) => fail('read', name, where, err), fs);
    },
    write(name, parts, keep) {
      const file = fileOf(name);
      const temp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      let fd: number | undefined;
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        fd = fs.openSync(temp, 'wx', 0o600);
        for (const part of parts) writeAll(fd, part);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fd = undefined;
        publish(name, file, temp, keep);
        syncDir();
      } catch (err) {
        if (fd !== undefined) ignoreErrors(() => fs.closeSync(fd!));
        ignoreErrors(() => fs.unlinkSync(temp));
        throw fail('save', name, file, err);
      }
    },
    remove(name) {
      const all = [...generations(name), ...journals(name)];
      try {
        for (const g of all) fs.unlinkSync(g.location);
        if (all.length > 0) syncDir();
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw fail('delete', name, fileOf(name), err);
      }
    },
    moveAside(name, tag) {
      const moved: string[] = [];
      try {
        for (const g of generations(name)) {
          const target = g.index === 0 ? `${fileOf(name)}.${tag}` : `${g.location}.${tag}`;
          fs.renameSync(g.location, target);
          moved.push(target);
        }
        // Journals go with the state they belong to.
        for (const j of journals(name)) {
          fs.renameSync(j.location, `${j.location}.${tag}`);
          moved.push(`${j.location}.${tag}`);
        }
        if (moved.length > 0) syncDir();
      } catch (err) {
        throw fail('move aside', name, fileOf(name), err);
      }
      return moved;
    },
    lock(name) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      return acquireFileLock(join(dir, `${safeFileName(name)}.lock`), name, fs);
    },
    cleanup(name) {
      // Exactly this name's leftovers: `<name>.ckpt.tmp-<pid>-<hex>` (a save),
      // `<name>.ckpt.1.tmp-<pid>` (a staged generation), `<name>.lock.tmp-<pid>-<hex>` and
      // `<name>.lock.stale-<pid>` (a lock being taken), not those of a name that extends it.
      const base = escapeRegExp(safeFileName(name));
      const leftover = new RegExp(
        `^${base}(?:\\.ckpt(?:\\.1)?\\.tmp-(\\d+)(?:-[0-9a-f]+)?|\\.lock\\.(?:tmp|stale)-(\\d+)(?:-[0-9a-f]+)?)$`,
      );
      for (const entry of listDir()) {
        const match = leftover.exec(entry);
        if (match === null) continue;
        const pid = Number(match[1] ?? match[2]);
        if (pid === process.pid || !isProcessAlive(pid)) {
          ignoreErrors(() => fs.unlinkSync(join(dir, entry)));
        }
      }
    },
  };
}

/**
 * Appends through node:fs directly: the writes run on libuv's pool, so a step's fsync does
 * not block the event loop; records are whole when the descriptor is in append mode.
 */
function fileJournal(fd: number, fail: (err: unknown) => Error): JournalFile {
  const writeAll = async (bytes: Uint8Array) => {
    let offset = 0;
    while (offset < bytes.byteLength) {
      const { bytesWritten } = await new Promise<{ bytesWritten: number }>((resolve, reject) =>
        nodeFs.write(fd, bytes, offset, bytes.byteLength - offset, null, (err, bytesWritten) =>
          err ? reject(err) : resolve({ bytesWritten }),
        ),
      );
      offset += bytesWritten;
    }
    await new Promise<void>((resolve, reject) =>
      nodeFs.fdatasync(fd, (err) => (err ? reject(err) : resolve())),
    );
  };
  return {
    async append(bytes) {
      try {
        await writeAll(bytes);
      } catch (err) {
        throw fail(err);
      }
    },
    appendSync(bytes) {
      try {
        let offset = 0;
        while (offset < bytes.byteLength) {
          offset += nodeFs.writeSync(fd, bytes, offset, bytes.byteLength - offset);
        }
        nodeFs.fdatasyncSync(fd);
      } catch (err) {
        throw fail(err);
      }
    },
    close() {
      ignoreErrors(() => nodeFs.closeSync(fd));
    },
  };
}

/**
 * Random access to the checkpoint file at `path` (named `where` in messages): reads fill
 * whole buffers or fail, a short file being corrupt. `fail` wraps I/O errors.
 */
export function openFileSource(
  path: string,
  where: string,
  fail: (err: unknown) => Error,
  fs: Pick<FileSystem, 'openSync' | 'fstatSync' | 'readSync' | 'closeSync'> = nodeFs,
): ByteSource & { close(): void } {
  let fd: number;
  let size: number;
  try {
    fd = fs.openSync(path, 'r');
    size = fs.fstatSync(fd).size;
  } catch (err) {
    throw fail(err);
  }
  return {
    size,
    read(into, position) {
      let done = 0;
      while (done < into.byteLength) {
        let n: number;
        try {
          n = fs.readSync(fd, into, done, into.byteLength - done, position + done);
        } catch (err) {
          throw fail(err);
        }
        if (n === 0) {
          throw new CorruptCheckpointError(
            `Checkpoint file ${where} is corrupt: truncated at ${position + done} bytes`,
          );
        }
        done += n;
      }
    },
    close: () => fs.closeSync(fd),
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}

function ignoreErrors(fn: () => void): void {
  try {
    fn();
  } catch {
    // Best-effort cleanup: the original failure is what the caller must see.
  }
}
