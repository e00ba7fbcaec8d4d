/**
 * Payload compression, chosen per chunk. Brotli quality 1 is the best built-in codec
 * measured here (~200 MB/s, ratio 3.5 on object state; gzip 1 is slower and larger, though
 * it decompresses 2-5x faster: S2's 16.6 MB, 19 against 45 ms; saves outnumber restores).
 * Chunks that barely shrink (random doubles shrink by ~6%) are stored raw: a 64 KiB sample
 * decides, which saves seconds on large numeric state, and is trusted for the next saves of
 * the same memory (SAMPLE_AGAIN).
 */
import zlib from 'node:zlib';
import { CorruptCheckpointError, UnsupportedFormatError } from '../errors.js';

/** Codec of one stored chunk; the numbers are written in files and never change. */
export const Codec = { none: 0, brotli: 1, gzip: 2 } as const;
export type CodecId = (typeof Codec)[keyof typeof Codec];
/** Compression setting of a checkpoint. */
export type Compression = keyof typeof Codec;

/** Every codec's name, sorted: what the `compression` option accepts. */
export const COMPRESSIONS: readonly Compression[] = (Object.keys(Codec) as Compression[]).sort();

const SAMPLE_BYTES = 64 * 1024;
/**
 * Chunks below this are stored raw: writing 1 MiB takes ~1 ms here, compressing it ~5 ms,
 * and the disk space saved on small states does not matter. It keeps small saves (the
 * primes state, 900 KB) at a few milliseconds.
 */
const MIN_COMPRESS_BYTES = 1024 * 1024;
/**
 * Below this ratio (stored / raw) compression is worth its CPU time. Brotli 1 compresses at
 * ~200 MB/s and a local disk writes at ~1 GB/s here, so a chunk must shrink a lot to pay:
 * object graphs (v8 streams shrink to ~0.25) do; smooth floats (~0.7) do not.
 */
const WORTHWHILE_RATIO = 0.6;

/**
 * What each codec does, in one place: adding a codec is a new id in `Codec` and an entry here
 * (#16.7). `maxRatio` bounds the raw bytes a stored chunk may claim (see `maxRawBytes`).
 */
interface CodecImpl {
  compress(data: Uint8Array): Buffer;
  decompress(bytes: Uint8Array, maxOutputLength: number, own: boolean): Buffer;
  maxRatio: number;
}

/**
 * zlib's output buffer for a chunk declared to inflate to `raw` bytes: one buffer, not 16 KiB
 * pieces joined by a copy at the end (S2: 1,000 pieces, 30 ms, #13.2); past 64 MiB, pieces of
 * that size. For a buffer the caller keeps (`own`: a restored segment owns exactly its bytes)
 * exactly `raw`, else container.ts would copy it into one of its size; filled, it makes zlib
 * allocate one more (untouched, freed) to see the end, which one byte more avoids for the
 * rest. zlib refuses one under Z_MIN_CHUNK (64 bytes): a smaller chunk, which the format
 * allows, would read as corrupt.
 */
const outputChunk = (raw: number, own: boolean): number =>
  Math.max(zlib.constants.Z_MIN_CHUNK, Math.min(own ? raw : raw + 1, 64 * 1024 ** 2));

/**
 * zlib's output pieces when compressing `raw` bytes: one for the 64 KiB sample taken of every
 * large chunk (brotli 1 took 1.65 ms on it in 16 KiB pieces, 0.92 ms in one, #17.1), pieces
 * of that size for a whole chunk, so no large buffer outlives what it holds.
 */
const compressOutput = (raw: number): number => Math.min(raw, SAMPLE_BYTES) + 1024;

const CODECS: Record<Exclude<CodecId, typeof Codec.none>, CodecImpl> = {
  [Codec.brotli]: {
    compress: (data) =>
      zlib.brotliCompressSync(data, {
        chunkSize: compressOutput(data.byteLength),
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: 1,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.byteLength,
        },
      }),
    decompress: (bytes, maxOutputLength, own) =>
      zlib.brotliDecompressSync(bytes, {
        maxOutputLength,
        chunkSize: outputChunk(maxOutputLength, own),
      }),
    maxRatio: 16_384,
  },
  [Codec.gzip]: {
    compress: (data) =>
      zlib.gzipSync(data, { level: 1, chunkSize: compressOutput(data.byteLength) }),
    decompress: (bytes, maxOutputLength, own) =>
      zlib.gunzipSync(bytes, { maxOutputLength, chunkSize: outputChunk(maxOutputLength, own) }),
    maxRatio: 1_032,
  },
};

/** The codec of id `codec`, or undefined for none and for ids this version does not know. */
function codecOf(codec: number): CodecImpl | undefined {
  return Object.hasOwn(CODECS, codec) ? CODECS[codec as keyof typeof CODECS] : undefined;
}

/** True for a codec id this version reads; another was written by a newer version. */
export function isKnownCodec(codec: number): boolean {
  return codec === Codec.none || codecOf(codec) !== undefined;
}

/** A chunk found not worth compressing is sampled again after this many saves of it. */
export const SAMPLE_AGAIN = 8;
/**
 * Chunks found not worth compressing, by the memory they view (buffer, then offset and
 * length): a live state saves the same large arrays again and again, and each 64 KiB sample
 * costs brotli 1-1.5 ms here, twice per S1 save() (#17.1). A verdict is trusted for
 * SAMPLE_AGAIN - 1 more saves of that memory: data that became compressible is stored raw
 * that long, which costs disk space only. Helps save() on the calling thread; the background
 * thread gets its staging buffer anew with each write, so it samples every time.
 */
const notWorthIt = new WeakMap<ArrayBufferLike, Map<string, number>>();
/** Verdicts kept per buffer: views that keep changing their span do not pile up. */
const MAX_SPANS = 64;

/** Which part of its buffer `data` views: the key of its verdict. */
const spanOf = (data: Uint8Array): string => `${data.byteOffset}:${data.byteLength}`;

/** True while `data`'s memory was found not worth compressing recently (counts this use). */
function knownIncompressible(data: Uint8Array): boolean {
  const spans = notWorthIt.get(data.buffer);
  const span = spanOf(data);
  const uses = spans?.get(span);
  if (spans === undefined || uses === undefined) return false;
  if (uses + 1 >= SAMPLE_AGAIN) {
    spans.delete(span);
    return false;
  }
  spans.set(span, uses + 1);
  return true;
}

function rememberIncompressible(data: Uint8Array): void {
  let spans = notWorthIt.get(data.buffer);
  if (spans === undefined) notWorthIt.set(data.buffer, (spans = new Map()));
  if (spans.size >= MAX_SPANS) spans.clear();
  spans.set(spanOf(data), 0);
}

/** Compresses `data` with `compression`, or returns it as is when that does not pay. */
export function compressChunk(
  data: Uint8Array,
  compression: Compression,
): { codec: CodecId; bytes: Uint8Array } {
  const codec = Codec[compression];
  const impl = codecOf(codec);
  if (impl === undefined || data.byteLength < MIN_COMPRESS_BYTES) {
    return { codec: Codec.none, bytes: data };
  }
  if (data.byteLength > 4 * SAMPLE_BYTES) {
    if (knownIncompressible(data)) return { codec: Codec.none, bytes: data };
    const from = Math.floor((data.byteLength - SAMPLE_BYTES) / 2);
    const sample = data.subarray(from, from + SAMPLE_BYTES);
    if (impl.compress(sample).byteLength > sample.byteLength * WORTHWHILE_RATIO) {
      rememberIncompressible(data);
      return { codec: Codec.none, bytes: data };
    }
  }
  const bytes = impl.compress(data);
  if (bytes.byteLength > data.byteLength * WORTHWHILE_RATIO) {
    return { codec: Codec.none, bytes: data };
  }
  return { codec, bytes };
}

/**
 * Most raw bytes that `stored` bytes of `codec` can honestly stand for (#11.5): a crafted
 * 3 KB brotli stream can inflate to 4 GiB, so a file declaring more than its codec yields
 * from that many bytes is refused before anything is decompressed. Measured on zeros (the
 * best case): brotli quality 1, which this library writes, 5,519:1; deflate cannot
 * exceed 1,032:1 whatever the level. Margins keep every file a writer of ours made.
 */
export function maxRawBytes(codec: number, stored: number): number {
  if (codec === Codec.none) return stored;
  const impl = codecOf(codec);
  return impl === undefined ? Number.POSITIVE_INFINITY : stored * impl.maxRatio;
}

/**
 * Inverse of compressChunk; the result has exactly `rawLength` bytes or this throws. Output
 * stops at `rawLength` (zlib's `maxOutputLength`): a stream inflating beyond what the file
 * declares fails at that point instead of filling memory. `where` names the file in the
 * error (a CorruptCheckpointError, #16.5). `own`: the caller keeps the result as a buffer
 * of its own (a restored segment), so zlib fills one of exactly `rawLength` bytes.
 */
export function decompressChunk(
  codec: number,
  bytes: Uint8Array,
  rawLength: number,
  where?: string,
  own = false,
): Buffer {
  const corrupt = (what: string) =>
    new CorruptCheckpointError(
      where === undefined ? what : `Checkpoint file ${where} could not be decoded: ${what}`,
    );
  let out: Buffer;
  if (codec === Codec.none) {
    out = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } else {
    const impl = codecOf(codec);
    // A codec id we do not know was written by a newer version, not damaged (#16.7).
    if (impl === undefined) {
      throw new UnsupportedFormatError(
        `unknown codec ${codec}: written by a newer version of resumable-state`,
      );
    }
    out = impl.decompress(bytes, Math.max(rawLength, 1), own);
  }
  if (out.byteLength !== rawLength) {
    throw corrupt(`chunk decompressed to ${out.byteLength} bytes, expected ${rawLength}`);
  }
  return out;
}

/** Name of a codec id, for metadata and the CLI. */
export function codecName(id: number): string {
  return (Object.keys(Codec) as Compression[]).find((k) => Codec[k] === id) ?? `unknown(${id})`;
}
