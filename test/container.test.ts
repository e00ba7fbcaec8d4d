/** The container writer (src/codec/container.ts): what packCheckpoint hands back. */
import { describe, expect, test } from 'vitest';
import {
  bytesSource,
  packCheckpoint,
  readCheckpoint,
  unpackCheckpoint,
} from '../dist/codec/container.js';
import { encodeState } from '../dist/codec/serializer.js';
import { CorruptCheckpointError } from '../dist/errors.js';

const meta = {
  name: 'job',
  source: {},
  createdAt: '2026-01-02T00:00:00.000Z',
  savedAt: '2026-01-02T00:00:01.000Z',
  saves: 1,
  library: 'resumable-state@0.1.0',
  node: 'v20.0.0',
  host: 'test',
  pid: 1,
};

// #16.2: the writers read sizes and codec from it instead of parsing the header bytes back.
test('packCheckpoint returns the metadata its header holds, sizes and codec filled in', () => {
  const envelope = { state: { a: new Float64Array(200_000) }, random: 1, tracked: {} };
  const parts = packCheckpoint(meta, encodeState(envelope), 'gzip');
  const file = Buffer.concat(parts);
  expect(parts.meta).toEqual(unpackCheckpoint(file, 'job.ckpt').meta);
  expect(parts.meta.codec).toBe('none+gzip');
  expect(parts.meta.rawBytes).toBeGreaterThan(1_600_000);
  expect(parts.meta.storedBytes).toBeLessThan(100_000);
});

// #17.3: restore reads through one cache-sized piece, checksummed and copied into place, so
// no page is touched first by the kernel and then again by the checksum.
describe('readCheckpoint reads in pieces of at most 1 MiB', () => {
  const values = new Float64Array(((2.5 * 1024 ** 2) >> 3) + 3).map((_, i) => i * 0.5);
  const envelope = { state: { values, text: 'x'.repeat(1024 ** 2 + 17) }, random: 1, tracked: {} };
  const file = Buffer.concat(packCheckpoint(meta, encodeState(envelope), 'none'));

  test('restores every byte of chunks spanning several pieces', () => {
    const reads: number[] = [];
    const memory = bytesSource(file);
    const source = {
      size: file.byteLength,
      read(into: Uint8Array, position: number) {
        reads.push(into.byteLength);
        memory.read(into, position);
      },
    };
    const { envelope: restored } = readCheckpoint(source, 'job.ckpt');
    const state = restored.state as typeof envelope.state;
    expect(Buffer.from(state.values.buffer).equals(Buffer.from(values.buffer))).toBe(true);
    expect(state.text).toBe(envelope.state.text);
    expect(Math.max(...reads)).toBe(1024 ** 2);
  });

  test('a byte flipped in the last piece of a segment fails the checksum', () => {
    const bad = Buffer.from(file);
    bad.writeUInt8(bad.readUInt8(bad.byteLength - 100) ^ 1, bad.byteLength - 100);
    expect(() => unpackCheckpoint(bad, 'job.ckpt')).toThrow(CorruptCheckpointError);
    expect(() => unpackCheckpoint(bad, 'job.ckpt')).toThrow(/checksum mismatch/);
  });
});

test('from memory, readCheckpoint reads raw segments straight into the restored arrays', () => {
  const values = new Float64Array(((2.5 * 1024 ** 2) >> 3) + 3).map((_, i) => i * 0.25);
  const file = Buffer.concat(
    packCheckpoint(meta, encodeState({ state: { values }, random: 1, tracked: {} }), 'none'),
  );
  const memory = bytesSource(file);
  const targets = new Set<ArrayBufferLike>();
  const source = {
    ...memory,
    read(into: Uint8Array, position: number) {
      targets.add(into.buffer);
      memory.read(into, position);
    },
  };
  const { envelope } = readCheckpoint(source, 'job.ckpt');
  const restored = (envelope.state as { values: Float64Array }).values;
  expect(Buffer.from(restored.buffer).equals(Buffer.from(values.buffer))).toBe(true);
  expect(targets.has(restored.buffer)).toBe(true);
});
