/**
 * Opening a checkpoint file for reading without trusting what sits at its name (#11.8): a
 * FIFO planted there would block open() and read() forever, and a symbolic link to
 * /dev/zero would be read without end. So the name is opened without following a link and
 * without blocking, and only a regular file is read, at most its size when opened.
 */
import nodeFs from 'node:fs';
import { CorruptCheckpointError } from '../errors.js';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = nodeFs.constants;

/** open() flags for reading a file that may not be what its name says. */
export const SAFE_READ_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

type OpenFs = Pick<typeof nodeFs, 'openSync' | 'fstatSync' | 'closeSync'>;
type ReadFs = OpenFs & Pick<typeof nodeFs, 'readSync'>;

/** What a non-regular file is, for messages. */
export function kindOf(stat: nodeFs.Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens the regular file at `path` (named `where` in messages) for reading; returns its
 * descriptor and size. A symbolic link, FIFO, device or socket there is not a checkpoint
 * file: CorruptCheckpointError, so a restore falls back to an older generation. Other
 * failures (EACCES, EIO) go through `fail`.
 */
export function openRegularFile(
  path: string,
  where: string,
  fail: (err: unknown) => Error,
  fs: OpenFs = nodeFs,
): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(path, SAFE_READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ELOOP: a symbolic link (never followed); ENXIO: a socket.
    if (code === 'ELOOP' || code === 'ENXIO') {
      throw new CorruptCheckpointError(
        `Checkpoint file ${where} is ${code === 'ELOOP' ? 'a symbolic link' : 'a socket'}, not a checkpoint file: refused`,
        { cause: err },
      );
    }
    throw fail(err);
  }
  let stat: nodeFs.Stats;
  try {
    stat = fs.fstatSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    throw fail(err);
  }
  if (!stat.isFile()) {
    fs.closeSync(fd);
    throw new CorruptCheckpointError(
      `Checkpoint file ${where} is ${kindOf(stat)}, not a checkpoint file: refused`,
    );
  }
  return { fd, size: stat.size };
}

/** The whole regular file at `path`: as many bytes as it had when opened, no more. */
export function readRegularFile(
  path: string,
  where: string,
  fail: (err: unknown) => Error,
  fs: ReadFs = nodeFs,
): Buffer {
  const { fd, size } = openRegularFile(path, where, fail, fs);
  try {
    const bytes = Buffer.allocUnsafe(size);
    for (let done = 0; done < size; ) {
      let n: number;
      try {
        n = fs.readSync(fd, bytes, done, size - done, done);
      } catch (err) {
        throw fail(err);
      }
      if (n === 0) {
        throw new CorruptCheckpointError(
          `Checkpoint file ${where} is corrupt: truncated at ${done} bytes`,
        );
      }
      done += n;
    }
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}
