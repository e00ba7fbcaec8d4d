/**
 * The container layout for readers that do not decode (#16.3): `resume list`, the stores'
 * name probes, the remote cache's integrity check. They read the header through `readHead`
 * and check a whole file with `verify`, and never compute an offset of their own. The
 * layout itself is documented and written in ./container.ts.
 */
import { CorruptCheckpointError } from '../errors.js';
import { crc32 } from './checksum.js';
import { type CheckpointMeta, END_MARKER, FIXED_HEAD, readHeader, TRAILER } from './container.js';

export { FIXED_HEAD, FORMAT_VERSION, MAGIC, TRAILER } from './container.js';

/** Bytes read first for the header: the header of almost every checkpoint fits. */
export const HEAD_PROBE = 64 * 1024;

/** A verified header: the metadata and the chunk table, and where the chunks start. */
export type Head = NonNullable<ReturnType<typeof readHeader>>;

/** Bytes from the start of a file that hold its whole header, from its first FIXED_HEAD. */
export function headEnd(first: Uint8Array): number {
  return (
    FIXED_HEAD + Buffer.from(first.buffer, first.byteOffset, first.byteLength).readUInt32LE(12)
  );
}

/**
 * One step of reading a head: the head when `bytes` (the first bytes of the file, `asked`
 * of them requested) hold it, else how many bytes to read next. Throws CorruptCheckpointError
 * for damage, and when the file ends before its header or it would exceed `limit`.
 */
function step(bytes: Uint8Array, asked: number, where: string, limit: number): Head | number {
  const head = readHeader(bytes, where);
  if (head !== undefined) return head;
  const end = bytes.byteLength >= FIXED_HEAD ? headEnd(bytes) : 0;
  // The file ended before its header, or cannot hold the header it declares.
  if (bytes.byteLength < asked || end <= bytes.byteLength || end > limit) {
    throw new CorruptCheckpointError(`Checkpoint file ${where} is corrupt: truncated`);
  }
  return end;
}

/**
 * The verified header of a stored checkpoint, read through `read(end)` (its bytes 0 to
 * `end` - 1, fewer at its end) in at most two reads, allocating no more than `limit` bytes
 * (the file's size where it is known).
 */
export function readHead(
  read: (end: number) => Uint8Array,
  where: string,
  limit = Number.POSITIVE_INFINITY,
): Head {
  let asked = Math.min(HEAD_PROBE, limit);
  for (;;) {
    const next = step(read(asked), asked, where, limit);
    if (typeof next !== 'number') return next;
    asked = next;
  }
}

/** readHead over an asynchronous source (a remote store's ranged GET). */
export async function readHeadAsync(
  read: (end: number) => Promise<Uint8Array>,
  where: string,
  limit = Number.POSITIVE_INFINITY,
): Promise<Head> {
  let asked = Math.min(HEAD_PROBE, limit);
  for (;;) {
    const next = step(await read(asked), asked, where, limit);
    if (typeof next !== 'number') return next;
    asked = next;
  }
}

/** The metadata of a stored checkpoint, from its verified header alone. */
export function metaOf(head: Head): CheckpointMeta {
  return head.header.meta;
}

/**
 * True when the bytes of a whole stored checkpoint, streamed as `chunks`, end with the end
 * marker and the checksum of everything before it (the payload is not decoded).
 */
export async function verify(chunks: AsyncIterable<Uint8Array>): Promise<boolean> {
  let crc = 0;
  // The last TRAILER bytes seen so far are held back: they may be the trailer.
  let tail = new Uint8Array(0);
  for await (const chunk of chunks) {
    if (chunk.byteLength >= TRAILER) {
      crc = crc32(tail, crc);
      crc = crc32(chunk.subarray(0, chunk.byteLength - TRAILER), crc);
      tail = chunk.slice(chunk.byteLength - TRAILER);
    } else {
      const joined = Buffer.concat([tail, chunk]);
      const cut = Math.max(0, joined.byteLength - TRAILER);
      crc = crc32(joined.subarray(0, cut), crc);
      tail = joined.subarray(cut);
    }
  }
  if (tail.byteLength < TRAILER) return false;
  const trailer = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
  return trailer.subarray(4).equals(END_MARKER) && trailer.readUInt32LE(0) === crc;
}
