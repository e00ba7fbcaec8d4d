/**
 * The checkpoint file format, version 1. All integers little-endian.
 *
 *   offset  size  field
 *   0       8     magic  89 52 53 54 41 54 45 0A  ("\x89RSTATE\n": binary, catches newline mangling)
 *   8       2     format version (1)
 *   10      2     flags (0; reserved)
 *   12      4     header length H
 *   16      4     head CRC-32 over bytes 0..16 and the header
 *   20      H     header: UTF-8 JSON { meta, chunks: [[codec, storedBytes, rawBytes], …] }
 *   …             zero padding to a multiple of 8
 *   …             chunks, each padded to a multiple of 8: chunk 0 is the v8 structure,
 *                 the others are raw segments of large typed arrays
 *   end-8   4     CRC-32 of every byte before it (header, metadata and payload)
 *   end-4   4     end marker "RSND"
 *
 * The head CRC lets `resume list` trust metadata without reading payloads; the final CRC is
 * verified over the whole file before a single byte is decoded.
 */
import { CorruptCheckpointError, UnsupportedFormatError } from '../errors.js';
import { crc32 } from './checksum.js';
import {
  Codec,
  type Compression,
  codecName,
  compressChunk,
  decompressChunk,
} from './compression.js';
import { decodeState, type EncodedState } from './serializer.js';

export const FORMAT_VERSION = 1;
export const MAGIC = Buffer.from([0x89, 0x52, 0x53, 0x54, 0x41, 0x54, 0x45, 0x0a]);
const END_MARKER = Buffer.from('RSND', 'latin1');
const FIXED_HEAD = 20;
const TRAILER = 8;

/** Metadata stored in every checkpoint, readable without decoding the state. */
export interface CheckpointMeta {
  name: string;
  /** Readable form of the `key` option, if one was given. */
  key?: string;
  source: { file?: string; function?: string };
  /** ISO times. */
  createdAt: string;
  savedAt: string;
  /** Number of saves since the checkpoint was created, this one included. */
  saves: number;
  /** The user's schema `version`, if set. */
  version?: string | number;
  /** Seed of the checkpoint's Random. */
  seed?: string | number;
  library: string;
  node: string;
  host: string;
  pid: number;
  /** The array job's shard this checkpoint belongs to (option `shard`, #15). */
  shard?: { index: number; count: number };
  /**
   * Items of the top-level `range`/`each` loops done (this shard's only) at this save, and
   * their total when every loop's is known (ranges, arrays, finished iterables) (#15.4).
   */
  progress?: { done: number; total?: number };
  /** Bytes of the encoded state before and after compression. */
  rawBytes: number;
  storedBytes: number;
  codec: string;
}

type ChunkEntry = [codec: number, stored: number, raw: number];

interface Header {
  meta: CheckpointMeta;
  chunks: ChunkEntry[];
}

const pad8 = (n: number) => (8 - (n % 8)) % 8;
const ZEROS = new Uint8Array(8);

/**
 * Lays out a checkpoint: compresses every chunk, fills in sizes and codec in `meta`, and
 * returns the parts to write in order (the last one holds the checksum).
 */
export function packCheckpoint(
  meta: Omit<CheckpointMeta, 'rawBytes' | 'storedBytes' | 'codec'>,
  encoded: EncodedState,
  compression: Compression,
): Uint8Array[] {
  const raw = [encoded.structure, ...encoded.segments];
  const stored = raw.map((chunk) => compressChunk(chunk, compression));
  const rawBytes = raw.reduce((n, c) => n + c.byteLength, 0);
  const storedBytes = stored.reduce((n, c) => n + c.bytes.byteLength, 0);
  const codecs = new Set(stored.map((c) => codecName(c.codec)));
  const header: Header = {
    meta: { ...meta, rawBytes, storedBytes, codec: [...codecs].join('+') },
    chunks: stored.map((c, i): ChunkEntry => [c.codec, c.bytes.byteLength, raw[i]!.byteLength]),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const head = Buffer.alloc(FIXED_HEAD);
  MAGIC.copy(head, 0);
  head.writeUInt16LE(FORMAT_VERSION, 8);
  head.writeUInt16LE(0, 10);
  head.writeUInt32LE(json.byteLength, 12);
  head.writeUInt32LE(crc32(json, crc32(head.subarray(0, 16))), 16);

  const parts: Uint8Array[] = [head, json];
  let length = FIXED_HEAD + json.byteLength;
  const push = (part: Uint8Array) => {
    parts.push(part);
    length += part.byteLength;
    const padding = pad8(length);
    if (padding > 0) {
      parts.push(ZEROS.subarray(0, padding));
      length += padding;
    }
  };
  push(new Uint8Array(0));
  for (const chunk of stored) push(chunk.bytes);
  let crc = 0;
  for (const part of parts) crc = crc32(part, crc);
  const trailer = Buffer.alloc(TRAILER);
  trailer.writeUInt32LE(crc, 0);
  END_MARKER.copy(trailer, 4);
  parts.push(trailer);
  return parts;
}

/** Where a corrupt file is, for messages. */
function corrupt(where: string, what: string): CorruptCheckpointError {
  return new CorruptCheckpointError(`Checkpoint file ${where} is corrupt: ${what}`);
}

/**
 * Reads and verifies the header from the first bytes of a file (at least 20 + H bytes).
 * Returns undefined when `bytes` is too short to hold the whole header yet.
 */
export function readHeader(
  bytes: Uint8Array,
  where: string,
): { header: Header; bodyOffset: number } | undefined {
  if (bytes.byteLength < FIXED_HEAD) {
    const n = Math.min(bytes.byteLength, MAGIC.byteLength);
    if (MAGIC.subarray(0, n).equals(bytes.subarray(0, n))) return undefined;
    throw corrupt(where, 'not a checkpoint file (bad magic)');
  }
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!view.subarray(0, 8).equals(MAGIC)) throw corrupt(where, 'not a checkpoint file (bad magic)');
  const version = view.readUInt16LE(8);
  const headerLength = view.readUInt32LE(12);
  if (bytes.byteLength < FIXED_HEAD + headerLength) return undefined;
  const json = view.subarray(FIXED_HEAD, FIXED_HEAD + headerLength);
  const expected = view.readUInt32LE(16);
  const actual = crc32(json, crc32(view.subarray(0, 16)));
  // The version is checked after the head CRC so a flipped bit reads as corruption.
  if (actual !== expected) {
    throw corrupt(
      where,
      `header checksum mismatch (stored ${hex(expected)}, computed ${hex(actual)})`,
    );
  }
  if (version > FORMAT_VERSION) {
    throw new UnsupportedFormatError(
      `Checkpoint file ${where} has format version ${version}; this version of resumable-state reads up to ${FORMAT_VERSION}. Upgrade resumable-state to read it.`,
    );
  }
  if (version < 1) throw corrupt(where, `invalid format version ${version}`);
  let header: Header;
  try {
    header = JSON.parse(json.toString('utf8')) as Header;
  } catch (err) {
    throw corrupt(where, `header is not valid JSON (${(err as Error).message})`);
  }
  if (
    typeof header !== 'object' ||
    header === null ||
    !Array.isArray(header.chunks) ||
    typeof header.meta !== 'object' ||
    header.meta === null
  ) {
    throw corrupt(where, 'header lacks meta or chunks');
  }
  const end = FIXED_HEAD + headerLength;
  return { header, bodyOffset: end + pad8(end) };
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** A decoded checkpoint file. */
export interface UnpackedCheckpoint {
  meta: CheckpointMeta;
  envelope: Record<string, unknown>;
}

/** Random access to the bytes of one stored checkpoint. */
export interface ByteSource {
  readonly size: number;
  /** Fills `into` with the bytes at `position`; throws if they are not all there. */
  read(into: Uint8Array, position: number): void;
}

/** A ByteSource over bytes already in memory. */
export function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    read: (into, position) => into.set(bytes.subarray(position, position + into.byteLength)),
  };
}

const HEAD_PROBE = 64 * 1024;

/**
 * Verifies a whole checkpoint file (length, end marker, checksum) and only then decodes it.
 * Throws CorruptCheckpointError naming `where` and what failed.
 */
export function unpackCheckpoint(file: Uint8Array, where: string): UnpackedCheckpoint {
  return readCheckpoint(bytesSource(file), where);
}

/**
 * Like unpackCheckpoint, reading from `source` piece by piece: raw segments are read
 * straight into the buffers the restored arrays will own (no extra copy of large state),
 * and the checksum runs over every piece before anything is decoded.
 */
export function readCheckpoint(source: ByteSource, where: string): UnpackedCheckpoint {
  const size = source.size;
  let headBytes = Buffer.allocUnsafe(Math.min(size, HEAD_PROBE));
  source.read(headBytes, 0);
  let head = readHeader(headBytes, where);
  if (head === undefined && size > headBytes.byteLength) {
    headBytes = Buffer.allocUnsafe(Math.min(size, 20 + headBytes.readUInt32LE(12) + 8));
    source.read(headBytes, 0);
    head = readHeader(headBytes, where);
  }
  if (head === undefined) throw corrupt(where, `truncated at ${size} bytes`);
  const { header, bodyOffset } = head;
  let expectedLength = bodyOffset;
  for (const entry of header.chunks) {
    if (!Array.isArray(entry) || entry.length !== 3 || !entry.every(Number.isSafeInteger)) {
      throw corrupt(where, 'malformed chunk table');
    }
    if (entry[1] < 0 || entry[2] < 0) throw corrupt(where, 'malformed chunk table');
    expectedLength += entry[1] + pad8(entry[1]);
  }
  expectedLength += TRAILER;
  if (size !== expectedLength) {
    const what = size < expectedLength ? 'truncated' : 'longer than its header says';
    throw corrupt(where, `${what}: ${size} bytes, expected ${expectedLength}`);
  }

  const prefix = Buffer.allocUnsafe(bodyOffset);
  if (headBytes.byteLength >= bodyOffset) headBytes.copy(prefix, 0, 0, bodyOffset);
  else source.read(prefix, 0);
  let crc = crc32(prefix);
  let offset = bodyOffset;
  const padding = Buffer.alloc(8);
  // Raw chunks are read into their final buffers; compressed ones into scratch space.
  const stored = header.chunks.map(([codec, storedLength], index) => {
    const bytes =
      codec === Codec.none && index > 0
        ? new Uint8Array(new ArrayBuffer(storedLength))
        : Buffer.allocUnsafe(storedLength);
    source.read(bytes, offset);
    crc = crc32(bytes, crc);
    const pad = padding.subarray(0, pad8(storedLength));
    source.read(pad, offset + storedLength);
    crc = crc32(pad, crc);
    offset += storedLength + pad.byteLength;
    return bytes;
  });
  const trailer = Buffer.allocUnsafe(TRAILER);
  source.read(trailer, offset);
  if (!trailer.subarray(4).equals(END_MARKER)) throw corrupt(where, 'bad end marker');
  const expected = trailer.readUInt32LE(0);
  if (crc !== expected) {
    throw corrupt(where, `checksum mismatch (stored ${hex(expected)}, computed ${hex(crc)})`);
  }
  try {
    const chunks = header.chunks.map(([codec, , raw], i) =>
      decompressChunk(codec, stored[i]!, raw),
    );
    const [structure, ...segmentBytes] = chunks;
    // Each segment gets a buffer of its own, so restored arrays own exactly their bytes.
    const segments = segmentBytes.map((s) =>
      s.byteOffset === 0 &&
      s.byteLength === s.buffer.byteLength &&
      !(s.buffer instanceof SharedArrayBuffer)
        ? (s.buffer as ArrayBuffer)
        : (s.buffer.slice(s.byteOffset, s.byteOffset + s.byteLength) as ArrayBuffer),
    );
    return { meta: header.meta, envelope: decodeState(structure!, segments) };
  } catch (err) {
    if (err instanceof CorruptCheckpointError) throw err;
    throw new CorruptCheckpointError(
      `Checkpoint file ${where} could not be decoded: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
