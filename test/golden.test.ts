import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { FORMAT_VERSION, packCheckpoint, unpackCheckpoint } from '../dist/codec/container.js';
import { encodeState } from '../dist/codec/serializer.js';
import {
  GoldenPoint,
  goldenEnvelope,
  goldenMeta,
  goldenState,
  goldenStateV2,
  // @ts-expect-error: a plain .mjs helper without types
} from './golden/make-golden.mjs';

const golden = (name: string) => {
  const path = new URL(`./golden/${name}`, import.meta.url).pathname;
  return { path, file: readFileSync(path) };
};

describe('format version 1 golden files', () => {
  test.each(['none', 'brotli'])(
    'v1-%s.ckpt still reads, with its metadata and exact state',
    (codec) => {
      const { path, file } = golden(`v1-${codec}.ckpt`);
      const { meta, envelope } = unpackCheckpoint(file, path);
      expect(file.readUInt16LE(8)).toBe(1);
      expect(meta).toEqual({
        name: 'golden',
        source: { file: '/golden/example.mjs', function: 'run' },
        createdAt: '2026-11-24T12:00:00.000Z',
        savedAt: '2026-11-24T12:30:00.000Z',
        saves: 3,
        seed: 7,
        library: 'resumable-state@0.1.0',
        node: 'v20.20.2',
        host: 'golden-host',
        pid: 1234,
        rawBytes: meta.rawBytes,
        storedBytes: meta.storedBytes,
        codec: codec === 'none' ? 'none' : 'none+brotli',
      });
      expect(envelope.random).toEqual({
        algorithm: 'xoshiro128**',
        seed: 7,
        s: [1, 2, 3, 4],
        spare: null,
      });
      const state = envelope.state as ReturnType<typeof goldenState>;
      expect(state).toEqual(goldenState());
      expect(state.self).toBe(state);
      expect(state.byName.get('a')).toBe(state.shared);
      expect(Object.is(state.values[1], -0)).toBe(true);
    },
  );
});

describe('format version 2 golden files (#13.1)', () => {
  test('the encoder still writes v2-none.ckpt byte for byte', () => {
    const { file } = golden('v2-none.ckpt');
    const written = Buffer.concat(
      packCheckpoint(goldenMeta, encodeState(goldenEnvelope()), 'none'),
    );
    expect(FORMAT_VERSION).toBe(2);
    expect(file.readUInt16LE(8)).toBe(2);
    expect(written.equals(file)).toBe(true);
  });

  test.each(['none', 'brotli'])('v2-%s.ckpt reads, with its exact state', (codec) => {
    const { path, file } = golden(`v2-${codec}.ckpt`);
    const { meta, envelope } = unpackCheckpoint(file, path);
    expect(meta).toMatchObject({ name: 'golden', saves: 3, node: 'v20.20.2' });
    expect(envelope.random).toEqual(goldenEnvelope().random);
    // biome-ignore lint/suspicious/noExplicitAny: a state of every type, checked field by field.
    const state = envelope.state as any;
    const expected = goldenStateV2();
    expect(state).toEqual(expected);
    expect(state.self).toBe(state);
    expect(state.byName.get('a')).toBe(state.shared);
    expect(Object.is(state.values[1], -0)).toBe(true);
    expect(state.ints.map(String)).toEqual(expected.ints.map(String));
    expect(state.packedInts).toEqual([2, 3, 5, 7, 11, -13, 300, -(2 ** 31), 2 ** 31 - 1]);
    expect(state.bigints).toEqual(expected.bigints);
    expect(state.strings).toEqual(expected.strings);
    expect([state.regexp.source, state.regexp.flags]).toEqual(['ab+c', 'dgimsuy'.replace('d', '')]);
    expect(state.boxed.map((b: object) => typeof b)).toEqual(Array(5).fill('object'));
    expect(state.boxed.map((b: { valueOf(): unknown }) => b.valueOf())).toEqual([
      1.5,
      'boxed',
      true,
      false,
      7n,
    ]);
    expect(Number.isNaN(state.invalidDate.getTime())).toBe(true);
    // Errors: class, message, stack, cause (with its cycle back to the state), extras, name.
    expect(state.error).toBeInstanceOf(RangeError);
    expect(state.error.message).toBe('out of range');
    expect(state.error.stack).toBe('RangeError: out of range\n    at golden');
    expect(state.error.cause.why).toBe('low');
    expect(state.error.cause.state).toBe(state);
    expect(state.error.code).toBe('E_RANGE');
    expect(Object.keys(state.error)).toEqual(['code']);
    expect(state.custom).toBeInstanceOf(Error);
    expect(state.custom.name).toBe('CustomError');
    expect(state.typeError).toBeInstanceOf(TypeError);
    expect(state.point).toBeInstanceOf(GoldenPoint);
    expect(state.points[1]).toBeInstanceOf(GoldenPoint);
    // Arrays' named properties (#13.1).
    expect(Object.entries(state.match)).toEqual(Object.entries(expected.match));
    expect(Object.getPrototypeOf(state.match.groups)).toBe(null);
    expect(state.labelledInts.self).toBe(state.labelledInts);
    expect(Object.keys(state.labelledInts)).toEqual(['0', '1', '2', '3', 'unit', 'self']);
    expect(Object.entries(state.labelledNumbers)).toEqual(Object.entries(expected.labelledNumbers));
    expect(Object.entries(state.labelledSparse)).toEqual([
      ['1', 'b'],
      ['label', 'holes'],
    ]);
    expect(state.labelledSparse.length).toBe(4);
    expect(Object.getPrototypeOf(state.nullProto)).toBe(null);
    expect(Object.keys(state.nullProto)).toEqual(['inside', '__proto__']);
    expect(Object.getPrototypeOf(state.proto)).toBe(Object.prototype);
    expect(Object.hasOwn(state.proto, '__proto__')).toBe(true);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(state.sparse.length).toBe(1001);
    expect(Object.keys(state.sparse)).toEqual(['0', '2', '1000']);
    // Views on one buffer still share it, at the same offsets.
    expect(state.tail.buffer).toBe(state.head.buffer);
    expect(state.dataView.buffer).toBe(state.head.buffer);
    expect([...state.tail]).toEqual([...expected.tail]);
    expect(state.dataView.getUint8(0)).toBe(2);
    expect(Buffer.isBuffer(state.buffer)).toBe(true);
    expect(state.buffer.toString()).toBe('buffer!');
    expect(state.large).toBeInstanceOf(Float64Array);
    expect(state.large.buffer.byteLength).toBe(80_000);
  });
});
