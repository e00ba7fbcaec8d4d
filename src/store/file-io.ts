/**
 * The file store's descriptor-level I/O (#16.6, out of file.ts): appending to a journal,
 * and random access to a checkpoint file (the bridged stores read their downloads with it).
 */
import nodeFs from 'node:fs';
import type { ByteSource } from '../codec/container.js';
import { CorruptCheckpointError } from '../errors.js';
import type { FileSystem } from './file.js';
import { openRegularFile } from './regular-file.js';
import type { JournalFile } from './store.js';

/**
 * Appends through node:fs directly: the writes run on libuv's pool, so a step's fsync does
 * not block the event loop; records are whole when the descriptor is in append mode.
 */
export function fileJournal(fd: number, fail: (err: unknown) => Error): JournalFile {
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
  const { fd, size } = openRegularFile(path, where, fail, fs);
  return {
    size,
    read(into, position) {
      let done = 0;
      while (done < into.byteLength) {
        let n: number;
        try {
          n = fs.readSync(
            fd,
            into,
            done,
            Math.min(into.byteLength - done, IO_SLICE),
            position + done,
          );
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

/** Bytes per read or write call: node:fs takes at most 2^31 - 1 at once (#11.9). */
export const IO_SLICE = 1024 ** 3;

function ignoreErrors(fn: () => void): void {
  try {
    fn();
  } catch {
    // Best-effort cleanup: the failure that matters is reported elsewhere.
  }
}
