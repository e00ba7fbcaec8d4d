/**
 * Payload compression, chosen per chunk. Brotli quality 1 is the best built-in codec
 * measured here (~200 MB/s, ratio 3.5 on object state; gzip 1 is slower and larger).
 * Chunks that barely shrink (random doubles shrink by ~6%) are stored raw: a 64 KiB sample
 * decides, which saves seconds on large numeric state.
 */
import zlib from 'node:zlib';
import { CorruptCheckpointError } from '../errors.js';

/** Codec of one stored chunk; the numbers are written in files and never change. */
export const Codec = { none: 0, brotli: 1, gzip: 2 } as const;
export type CodecId = (typeof Codec)[keyof typeof Codec];
/** Compression setting of a checkpoint. */
export type Compression = keyof typeof Codec;

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

function compressWith(codec: CodecId, data: Uint8Array): Buffer {
  if (codec === Codec.gzip) return zlib.gzipSync(data, { level: 1 });
  return zlib.brotliCompressSync(data, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 1,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.byteLength,
    },
  });
}

/** Compresses `data` with `compression`, or returns it as is when that does not pay. */
export function compressChunk(
  data: Uint8Array,
  compression: Compression,
): { codec: CodecId; bytes: Uint8Array } {
  const codec = Codec[compression];
  if (codec === Codec.none || data.byteLength < MIN_COMPRESS_BYTES) {
    return { codec: Codec.none, bytes: data };
  }
  if (data.byteLength > 4 * SAMPLE_BYTES) {
    const from = Math.floor((data.byteLength - SAMPLE_BYTES) / 2);
    const sample = data.subarray(from, from + SAMPLE_BYTES);
    if (compressWith(codec, sample).byteLength > sample.byteLength * WORTHWHILE_RATIO) {
      return { codec: Codec.none, bytes: data };
    }
  }
  const bytes = compressWith(codec, data);
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
  switch (codec) {
    case Codec.none:
      return stored;
    case Codec.brotli:
      return stored * MAX_BROTLI_RATIO;
    case Codec.gzip:
      return stored * MAX_DEFLATE_RATIO;
    default:
      return Number.POSITIVE_INFINITY;
  }
}
const MAX_BROTLI_RATIO = 16_384;
const MAX_DEFLATE_RATIO = 1_032;

/**
 * Inverse of compressChunk; the result has exactly `rawLength` bytes or this throws. Output
 * stops at `rawLength` (zlib's `maxOutputLength`): a stream inflating beyond what the file
 * declares fails at that point instead of filling memory. `where` names the file in the
 * error (a CorruptCheckpointError, #16.5).
 */
export function decompressChunk(
  codec: number,
  bytes: Uint8Array,
  rawLength: number,
  where?: string,
): Buffer {
  const corrupt = (what: string) =>
    new CorruptCheckpointError(
      where === undefined ? what : `Checkpoint file ${where} could not be decoded: ${what}`,
    );
  let out: Buffer;
  switch (codec) {
    case Codec.none:
      out = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      break;
    case Codec.brotli:
      out = zlib.brotliDecompressSync(bytes, { maxOutputLength: Math.max(rawLength, 1) });
      break;
    case Codec.gzip:
      out = zlib.gunzipSync(bytes, { maxOutputLength: Math.max(rawLength, 1) });
      break;
    default:
      throw corrupt(`unknown codec ${codec}`);
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
