import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import {
  Codec,
  type CodecId,
  compressChunk,
  decompressChunk,
  SAMPLE_AGAIN,
} from '../dist/codec/compression.js';
import { layoutCheckpoint, packCheckpoint, unpackCheckpoint } from '../dist/codec/container.js';
import { encodeState } from '../dist/codec/serializer.js';
import { UnsupportedFormatError } from '../dist/index.js';
import { fileMeta, thrownBy } from './helpers.js';

const MiB = 1024 * 1024;

describe('per-chunk compression', () => {
  test('a large compressible chunk is compressed and decompresses to the same bytes', () => {
    const data = Buffer.alloc(2 * MiB);
    for (let i = 0; i < data.length; i++) data[i] = i % 7;
    for (const compression of ['brotli', 'gzip'] as const) {
      const { codec, bytes } = compressChunk(data, compression);
      expect(codec).toBe(Codec[compression]);
      expect(bytes.byteLength).toBeLessThan(data.byteLength / 10);
      expect(decompressChunk(codec, bytes, data.byteLength).equals(data)).toBe(true);
    }
  });

  test('incompressible data (random bytes) is stored raw, decided from a sample', () => {
    const data = randomBytes(4 * MiB);
    const { codec, bytes } = compressChunk(data, 'brotli');
    expect(codec).toBe(Codec.none);
    expect(bytes).toBe(data);
  });

  test('memory found incompressible is sampled again only every SAMPLE_AGAIN-th save (#17.1)', () => {
    const data = randomBytes(4 * MiB);
    expect(compressChunk(data, 'brotli').codec).toBe(Codec.none); // sampled
    data.fill(0); // now compressible, in the same memory
    const codecs: number[] = [];
    for (let save = 1; save <= SAMPLE_AGAIN; save++)
      codecs.push(compressChunk(data, 'brotli').codec);
    expect(codecs).toEqual([...Array(SAMPLE_AGAIN - 1).fill(Codec.none), Codec.brotli]);
    // Another view of that memory has a verdict of its own.
    const other = randomBytes(4 * MiB);
    expect(compressChunk(other, 'brotli').codec).toBe(Codec.none);
    other.fill(0);
    expect(compressChunk(other.subarray(0, 2 * MiB), 'brotli').codec).toBe(Codec.brotli);
  });

  test('verdicts on one buffer are capped: the 65th span found incompressible forgets the rest', () => {
    const data = randomBytes(4 * MiB);
    const first = data.subarray(0, 2 * MiB);
    expect(compressChunk(first, 'brotli').codec).toBe(Codec.none); // verdict 1 of 64
    for (let k = 1; k < 64; k++) compressChunk(data.subarray(0, MiB + k), 'brotli');
    data.fill(0);
    expect(compressChunk(first, 'brotli').codec).toBe(Codec.none); // still known
    data.set(randomBytes(2 * MiB), 2 * MiB);
    expect(compressChunk(data.subarray(2 * MiB), 'brotli').codec).toBe(Codec.none); // the 65th
    expect(compressChunk(first, 'brotli').codec).toBe(Codec.brotli); // forgotten: sampled again
  });

  test('chunks under 1 MiB are stored raw: compressing them costs more than writing them', () => {
    const data = Buffer.alloc(MiB - 1);
    expect(compressChunk(data, 'brotli')).toEqual({ codec: Codec.none, bytes: data });
  });

  test("compression 'none' never compresses", () => {
    const data = Buffer.alloc(4 * MiB);
    expect(compressChunk(data, 'none').codec).toBe(Codec.none);
  });

  test('a chunk that decompresses to another length is rejected', () => {
    const data = Buffer.alloc(2 * MiB, 1);
    const { codec, bytes } = compressChunk(data, 'brotli');
    expect(() => decompressChunk(codec, bytes, data.byteLength + 1)).toThrow(
      `chunk decompressed to ${data.byteLength} bytes, expected ${data.byteLength + 1}`,
    );
    expect(() => decompressChunk(9, bytes, 1)).toThrow('unknown codec 9');
  });
});

describe('compressed chunks of any size decompress (#13.2)', () => {
  // Our writer compresses only chunks of 1 MiB or more, but the format allows any size
  // (docs/format.md): zlib refuses an output buffer under 64 bytes, so one sized to the
  // chunk must not go below that.
  const compressors = {
    brotli: (data: Uint8Array) => zlib.brotliCompressSync(data),
    gzip: (data: Uint8Array) => zlib.gzipSync(data),
  };

  test('chunks of 0 to 64 bytes come back exactly', () => {
    for (const [name, compress] of Object.entries(compressors)) {
      for (const length of [0, 1, 2, 62, 63, 64]) {
        const data = Buffer.alloc(length, 7);
        const out = decompressChunk(Codec[name as 'brotli' | 'gzip'], compress(data), length);
        expect([name, length, out.equals(data)]).toEqual([name, length, true]);
      }
    }
  });

  test('a file whose small structure is compressed restores', () => {
    const meta = fileMeta();
    const structure = encodeState({ state: { n: 1 } }).structure;
    expect(structure.byteLength).toBeLessThan(63);
    for (const [name, compress] of Object.entries(compressors)) {
      const file = Buffer.concat(
        layoutCheckpoint(meta, [
          {
            codec: Codec[name as 'brotli' | 'gzip'],
            bytes: compress(structure),
            rawBytes: structure.byteLength,
          },
        ]),
      );
      expect(unpackCheckpoint(file, 'job.ckpt').envelope).toEqual({ state: { n: 1 } });
    }
  });
});

describe('compressed segments restore without a copy (#13.2)', () => {
  test('a compressible typed array owns the buffer zlib filled: exactly its bytes, no slice', () => {
    const values = new Float64Array(300_000).map((_, i) => i % 1000); // 2.4 MB, compressible
    for (const compression of ['brotli', 'gzip'] as const) {
      const encoded = encodeState({ state: { values } });
      const parts = packCheckpoint(fileMeta(), encoded, compression);
      expect(parts.meta.codec).toBe(`none+${compression}`); // the structure is small
      const file = Buffer.concat(parts);
      const slice = ArrayBuffer.prototype.slice;
      let slices = 0;
      ArrayBuffer.prototype.slice = function (this: ArrayBuffer, ...args: [number?, number?]) {
        slices++;
        return slice.apply(this, args);
      };
      let restored: Float64Array;
      try {
        restored = (unpackCheckpoint(file, 'job.ckpt').envelope.state as { values: Float64Array })
          .values;
      } finally {
        ArrayBuffer.prototype.slice = slice;
      }
      expect([compression, slices]).toEqual([compression, 0]);
      expect(restored.buffer.byteLength).toBe(values.byteLength);
      expect(restored).toEqual(values);
    }
  });
});

describe('a codec this version does not know (#16.7)', () => {
  const meta = {
    name: 'job',
    source: {},
    createdAt: '2026-01-01T00:00:00.000Z',
    savedAt: '2026-01-01T00:00:00.000Z',
    saves: 1,
    library: 'resumable-state@9.0.0',
    node: process.version,
    host: 'test',
    pid: 1,
  };

  test('is a newer format, not corruption: UnsupportedFormatError naming the file and the codec', () => {
    const structure = encodeState({ state: 1 }).structure;
    const file = Buffer.concat(
      layoutCheckpoint(meta, [
        { codec: 9 as CodecId, bytes: structure, rawBytes: structure.byteLength },
      ]),
    );
    const err = thrownBy(() => unpackCheckpoint(file, 'job.ckpt'));
    expect(err).toBeInstanceOf(UnsupportedFormatError);
    expect((err as UnsupportedFormatError).code).toBe('CHECKPOINT_FORMAT');
    expect((err as Error).message).toBe(
      'Checkpoint file job.ckpt uses compression codec 9, unknown to this version of resumable-state. Upgrade resumable-state to read it.',
    );
  });

  test('decompressChunk refuses it with UnsupportedFormatError', () => {
    expect(thrownBy(() => decompressChunk(9, new Uint8Array(1), 1))).toBeInstanceOf(
      UnsupportedFormatError,
    );
  });
});
