/**
 * The checkpoint file format, version 2 (docs/format.md). All integers little-endian.
 *
 *   offset  size  field
 *   0       8     magic  89 52 53 54 41 54 45 0A  ("\x89RSTATE\n": binary, catches newline mangling)
 *   8       2     format version (2; 1 for files whose chunk 0 is node:v8's stream)
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
 *
 * Over 400 lines: the container's writer and reader side by side, so its layout is
 * defined once.
 */
import { constants } from 'node:buffer';
import { totalmem } from 'node:os';
import v8 from 'node:v8';
import { CorruptCheckpointError, StateTooDeepError, UnsupportedFormatError } from '../errors.js';
import { crc32 } from './checksum.js';
import {
  Codec,
  type CodecId,
  type Compression,
  codecName,
  compressChunk,
  decompressChunk,
  isKnownCodec,
  maxRawBytes,
} from './compression.js';
import { decodePortable } from './portable/decode.js';
import { type EncodedState, isStackOverflow } from './serializer.js';
import { decodeV8State } from './v8-state.js';

/** Version written; 1 (node:v8 state) is still read where node:v8 works (#13.1). */
export const FORMAT_VERSION = 2;
export const MAGIC = Buffer.from([0x89, 0x52, 0x53, 0x54, 0x41, 0x54, 0x45, 0x0a]);
export const END_MARKER = Buffer.from('RSND', 'latin1');
/** Bytes before the header: magic, version, flags, header length, head CRC (#16.3). */
export const FIXED_HEAD = 20;
/** Bytes after the last chunk: the CRC of everything before it, then the end marker. */
export const TRAILER = 8;

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
  /** `process.version`: Node's, or the one Bun or Deno report. */
  node: string;
  /** The runtime that wrote it, e.g. `Bun 1.4.5` (absent in files of 0.1). */
  runtime?: string;
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

/** One chunk as stored: its codec, its bytes in the file and its size once decompressed. */
export interface StoredChunk {
  codec: CodecId;
  bytes: Uint8Array;
  rawBytes: number;
}

/**
 * The parts of a checkpoint file to write in order (the last one holds the checksum), and
 * the metadata its header holds (sizes and codec filled in), so nobody parses it back (#16.2).
 */
export type PackedCheckpoint = Uint8Array[] & { readonly meta: CheckpointMeta };

/**
 * Lays out a checkpoint: compresses every chunk, fills in sizes and codec in `meta`, and
 * returns the parts to write in order (the last one holds the checksum) with that meta.
 *
 * `copyShared` (default true): chunks that are views on a SharedArrayBuffer are copied
 * before they are checksummed, because another thread may change them between the checksum
 * and the write, which would leave a file failing its own checksum (#11.1). The background
 * writer passes false: its staged snapshot is already a private copy.
 */
export function packCheckpoint(
  meta: Omit<CheckpointMeta, 'rawBytes' | 'storedBytes' | 'codec'>,
  encoded: EncodedState,
  compression: Compression,
  {
    copyShared = true,
    deferChecksum = false,
  }: { copyShared?: boolean; deferChecksum?: boolean } = {},
): PackedCheckpoint {
  const chunks = [encoded.structure, ...encoded.segments].map((raw): StoredChunk => {
    const { codec, bytes } = compressChunk(raw, compression);
    // A compressed chunk is already a private copy; a raw one is the live memory.
    const stable = copyShared && bytes.buffer instanceof SharedArrayBuffer ? bytes.slice() : bytes;
    return { codec, bytes: stable, rawBytes: raw.byteLength };
  });
  return layoutCheckpoint(meta, chunks, { deferChecksum });
}

/**
 * Lays out chunks already compressed: header, padded chunks, trailer with the checksum.
 * With `deferChecksum` the trailer's checksum is left for `sealCheckpoint`, which a store
 * that knows it (`sealsChecksum`) calls once the bytes before it are on their way (#17.1).
 */
export function layoutCheckpoint(
  meta: Omit<CheckpointMeta, 'rawBytes' | 'storedBytes' | 'codec'>,
  chunks: readonly StoredChunk[],
  { deferChecksum = false }: { deferChecksum?: boolean } = {},
): PackedCheckpoint {
  const rawBytes = chunks.reduce((n, c) => n + c.rawBytes, 0);
  const storedBytes = chunks.reduce((n, c) => n + c.bytes.byteLength, 0);
  const codecs = new Set(chunks.map((c) => codecName(c.codec)));
  const header: Header = {
    meta: { ...meta, rawBytes, storedBytes, codec: [...codecs].join('+') },
    chunks: chunks.map((c): ChunkEntry => [c.codec, c.bytes.byteLength, c.rawBytes]),
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
  for (const chunk of chunks) push(chunk.bytes);
  const trailer = Buffer.alloc(TRAILER);
  PENDING_MARKER.copy(trailer, 4);
  parts.push(trailer);
  if (!deferChecksum) sealCheckpoint(parts);
  return Object.assign(parts, { meta: header.meta });
}

/**
 * End marker of a trailer whose checksum is not computed yet (#17.1). Told by its bytes,
 * not by object identity, so a store from another copy of this module (the background
 * thread's bundle) still recognises it; written unsealed by mistake, the file fails its
 * end-marker check instead of passing for a checkpoint.
 */
const PENDING_MARKER = Buffer.from('rsnd', 'latin1');

/** Whether `parts` (from packCheckpoint/layoutCheckpoint) still lack their checksum. */
export function isUnsealed(parts: readonly Uint8Array[]): boolean {
  const trailer = parts[parts.length - 1];
  return (
    trailer !== undefined &&
    trailer.byteLength === TRAILER &&
    PENDING_MARKER.equals(trailer.subarray(4))
  );
}

/**
 * Computes the checksum of every part but the last into the trailer (the last part) of
 * parts laid out with `deferChecksum`; does nothing to parts already sealed. The file store
 * calls it after writing the other parts, while the disk flushes them (#17.1): the trailer
 * must be written after this, never before.
 */
export function sealCheckpoint(parts: readonly Uint8Array[]): void {
  if (!isUnsealed(parts)) return;
  const trailer = parts[parts.length - 1]!;
  let crc = 0;
  for (let i = 0; i < parts.length - 1; i++) crc = crc32(parts[i]!, crc);
  new DataView(trailer.buffer, trailer.byteOffset, TRAILER).setUint32(0, crc, true);
  trailer.set(END_MARKER, 4);
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
): { header: Header; bodyOffset: number; version: number } | undefined {
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
  return { header, bodyOffset: end + pad8(end), version };
}

/**
 * Refuses a chunk table that declares more decompressed bytes than its chunks can honestly
 * hold, before a byte is allocated for them (#11.5): each chunk within its codec's ratio and
 * within the largest buffer the runtime can make, the total within this machine's memory
 * and equal to the sizes stated in the metadata.
 */
function checkDeclaredSizes(header: Header, where: string): void {
  let raw = 0;
  let stored = 0;
  for (const [index, [codec, storedLength, rawLength]] of header.chunks.entries()) {
    // A codec id is a small non-negative integer: anything else is damage, not a newer format.
    if (!Number.isSafeInteger(codec) || codec < 0) {
      throw corrupt(where, `chunk ${index} has codec ${JSON.stringify(codec)}`);
    }
    if (!isKnownCodec(codec)) {
      throw new UnsupportedFormatError(
        `Checkpoint file ${where} uses compression codec ${codec}, unknown to this version of resumable-state. Upgrade resumable-state to read it.`,
      );
    }
    if (rawLength > maxRawBytes(codec, storedLength) || rawLength > MAX_CHUNK_BYTES) {
      throw corrupt(
        where,
        `chunk ${index} declares ${rawLength} bytes from ${storedLength} stored ${codecName(codec)} bytes, more than that can hold`,
      );
    }
    raw += rawLength;
    stored += storedLength;
  }
  const { meta } = header;
  if (meta.rawBytes !== raw || meta.storedBytes !== stored) {
    throw corrupt(
      where,
      `its metadata states ${String(meta.rawBytes)} raw and ${String(meta.storedBytes)} stored bytes, its chunks ${raw} and ${stored}`,
    );
  }
  if (raw > totalmem()) {
    throw corrupt(where, `it declares ${raw} bytes of state, more than this machine's memory`);
  }
}

/** The largest chunk a Uint8Array can hold (4 GiB on Node 20-21, more on later versions). */
const MAX_CHUNK_BYTES = constants.MAX_LENGTH;

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** A decoded checkpoint file. */
export interface UnpackedCheckpoint {
  meta: CheckpointMeta;
  envelope: Record<string, unknown>;
}

/** Random access to the bytes of one stored checkpoint. */
export interface ByteSource {
  readonly size: number;
  /** The bytes are in memory already: read straight into place, no piece in between. */
  readonly inMemory?: boolean;
  /** Fills `into` with the bytes at `position`; throws if they are not all there. */
  read(into: Uint8Array, position: number): void;
}

/** A ByteSource over bytes already in memory. */
export function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    inMemory: true,
    read: (into, position) => into.set(bytes.subarray(position, position + into.byteLength)),
  };
}

const HEAD_PROBE = 64 * 1024;

/**
 * Newest V8 wire format version this runtime reads: the one it writes. Undefined where
 * node:v8 cannot serialize (Bun): format 1 files cannot be read there (#13.1).
 */
const WIRE_VERSION = (() => {
  try {
    // Bun's serialize writes its own format (no 0xFF tag) and has no v8.Deserializer.
    const probe = v8.serialize(0);
    if (probe[0] !== 0xff) return undefined;
    const deserializer = new v8.Deserializer(probe);
    deserializer.readHeader();
    return probe[1];
  } catch {
    return undefined;
  }
})();

/** Why this runtime cannot read a format 1 file, if it cannot. */
function v1Unreadable(where: string): UnsupportedFormatError | undefined {
  if (WIRE_VERSION !== undefined) return undefined;
  const runtime =
    typeof process.versions.bun === 'string'
      ? `Bun ${process.versions.bun}`
      : `this runtime (${process.version})`;
  return new UnsupportedFormatError(
    `Checkpoint file ${where} has format version 1, which holds node:v8's serialization, and ${runtime} has no node:v8 deserializer. Restore it once with Node (any later save writes format 2, which every runtime reads).`,
  );
}

const major = (version: string) => /^v(\d+)\./.exec(version)?.[1];

/** Whether `meta` names a Node version (`v22.1.0`) of another major than this one. */
function writtenByAnotherNode(meta: CheckpointMeta): boolean {
  const writer = typeof meta.node === 'string' ? major(meta.node) : undefined;
  return writer !== undefined && writer !== major(process.version);
}

/**
 * A structure written by a newer V8 (its wire format version, after the 0xFF tag, is above
 * ours) is refused before decoding, naming the runtime that wrote it (#12.4).
 */
function checkWireVersion(structure: Uint8Array, meta: CheckpointMeta, where: string): void {
  if (WIRE_VERSION === undefined) return;
  if (structure[0] !== 0xff || structure[1]! <= WIRE_VERSION) return;
  // One Node major keeps one wire format: from our own major this can only be damage.
  if (!writtenByAnotherNode(meta)) return;
  throw new UnsupportedFormatError(
    `Checkpoint file ${where} holds V8 serialization format ${structure[1]}, written by Node ${meta.node ?? 'of unknown version'}; Node ${process.version} reads up to format ${WIRE_VERSION}. Restore it with a newer Node.`,
  );
}

/** Bytes read at a time while restoring: small enough to be checksummed in cache (#17.3). */
const READ_PIECE = 1024 * 1024;

/**
 * Fills `into` from `source` at `position` through `piece`, a small reused buffer, and
 * returns `crc` continued over the bytes. Measured on these VMs, a page the kernel filled
 * in read() faults again at its first touch from user space: reading 100 MB straight into
 * place and then checksumming it took 305 + 160 ms; through one cache-sized piece, each
 * checksummed and copied into place, about the read alone. The kernel's own first touch of
 * those pages then comes with the first save() writing them (docs/benchmarks.md).
 */
function readChecked(
  source: ByteSource,
  into: Uint8Array,
  position: number,
  piece: Uint8Array,
  crc: number,
): number {
  // From memory, one copy either way: straight into place, each part checksummed after it.
  const direct = source.inMemory === true;
  for (let at = 0; at < into.byteLength; at += piece.byteLength) {
    const length = Math.min(piece.byteLength, into.byteLength - at);
    const part = direct ? into.subarray(at, at + length) : piece.subarray(0, length);
    source.read(part, position + at);
    crc = crc32(part, crc);
    if (!direct) into.set(part, at);
  }
  return crc;
}

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
  const { header, bodyOffset, version } = head;
  if (version === 1) {
    const unreadable = v1Unreadable(where);
    if (unreadable !== undefined) throw unreadable;
  }
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
  checkDeclaredSizes(header, where);

  const prefix = Buffer.allocUnsafe(bodyOffset);
  if (headBytes.byteLength >= bodyOffset) headBytes.copy(prefix, 0, 0, bodyOffset);
  else source.read(prefix, 0);
  let crc = crc32(prefix);
  let offset = bodyOffset;
  const padding = Buffer.alloc(8);
  const piece = Buffer.allocUnsafe(Math.min(READ_PIECE, size));
  // Raw segments end in the buffers the restored arrays own; the rest in scratch space.
  const stored = header.chunks.map(([codec, storedLength], index) => {
    const bytes =
      codec === Codec.none && index > 0
        ? new Uint8Array(new ArrayBuffer(storedLength))
        : Buffer.allocUnsafe(storedLength);
    crc = readChecked(source, bytes, offset, piece, crc);
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
    // Segments become the restored arrays' own buffers (`own`); the structure is only read.
    const chunks = header.chunks.map(([codec, , raw], i) =>
      decompressChunk(codec, stored[i]!, raw, where, i > 0),
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
    if (version >= 2) {
      const envelope = decodePortable(structure!, segments) as Record<string, unknown>;
      return { meta: header.meta, envelope };
    }
    checkWireVersion(structure!, header.meta, where);
    return { meta: header.meta, envelope: decodeV8State(structure!, segments) };
  } catch (err) {
    if (err instanceof CorruptCheckpointError || err instanceof UnsupportedFormatError) throw err;
    // The checksum held, so the bytes are the ones written: running out of stack while
    // decoding them says where restore() was called from, not that the file is bad (#11.10).
    if (isStackOverflow(err)) {
      throw new StateTooDeepError(
        `Checkpoint file ${where} is intact, but its state is nested too deeply to decode from this call stack. Call restore() from a shallower point of your program, or raise the stack size (node --stack-size=<kB>, e.g. 4000; the default is 984)`,
        { cause: err },
      );
    }
    // Intact bytes (the checksum held) that this runtime cannot decode, written by another
    // runtime version: V8's format differs between them (#12.4). Not corruption: the file
    // is fine for the runtime that wrote it, and must not be taken for a damaged one.
    const writer = header.meta.node;
    if (version === 1 && writtenByAnotherNode(header.meta)) {
      throw new UnsupportedFormatError(
        `Checkpoint file ${where} was written by Node ${writer} and cannot be decoded by Node ${process.version}: ${(err as Error).message} Restore it with Node ${major(writer)}.`,
        { cause: err },
      );
    }
    throw new CorruptCheckpointError(
      `Checkpoint file ${where} could not be decoded: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
