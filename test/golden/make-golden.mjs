// Writes the golden files of the current format version (2). Run once by hand
// (node test/golden/make-golden.mjs) when a new format version is introduced; the files of
// older versions (v1-*.ckpt, written by node:v8) must never change.
import { writeFileSync } from 'node:fs';
import { packCheckpoint } from '../../dist/codec/container.js';
import { encodeState } from '../../dist/codec/serializer.js';
import { registerClass } from '../../dist/index.js';

export function goldenState() {
  const shared = { id: 'shared' };
  const state = {
    step: 42,
    values: [1.5, -0, Number.NaN, 2n ** 64n, 'text', null, undefined],
    when: new Date(Date.UTC(2026, 10, 24, 12, 0, 0)),
    byName: new Map([['a', shared]]),
    tags: new Set(['x', 'y']),
    small: Float32Array.of(1, 2, 3),
    large: Float64Array.from({ length: 10_000 }, (_, i) => i * 0.25),
    shared,
  };
  state.self = state;
  return state;
}

export class GoldenPoint {
  constructor(x, y) {
    this.x = x;
    this.y = y;
  }
}
registerClass(GoldenPoint, 'golden.Point');

/** Everything format 2 stores, on top of goldenState(). */
export function goldenStateV2() {
  const state = goldenState();
  const error = new RangeError('out of range', { cause: { why: 'low', state } });
  error.code = 'E_RANGE';
  error.stack = 'RangeError: out of range\n    at golden';
  const typeError = new TypeError('bad type');
  typeError.stack = 'TypeError: bad type';
  const custom = new Error('custom');
  custom.name = 'CustomError';
  custom.stack = 'CustomError: custom';
  const nullProto = Object.create(null);
  nullProto.inside = true;
  // An own data property named __proto__ (what assignment makes on a null-prototype object).
  Object.defineProperty(nullProto, '__proto__', {
    value: 'data',
    writable: true,
    enumerable: true,
    configurable: true,
  });
  const bytes = new Uint8Array(16).map((_, i) => i);
  // biome-ignore lint/suspicious/noSparseArray: the holes are what this freezes.
  const sparse = [1, , 3, , ,];
  sparse[1000] = 'far';
  // Arrays with named properties (#13.1), one of each tag: items, packed ints, packed numbers.
  const labelledInts = Object.assign([1, 2, 3, 4], { unit: 'm' });
  labelledInts.self = labelledInts;
  // biome-ignore lint/suspicious/noSparseArray: a sparse array with a named property.
  const labelledSparse = Object.assign([, 'b', , ,], { label: 'holes' });
  Object.assign(state, {
    ints: [
      0,
      1,
      -1,
      63,
      -64,
      2 ** 31 - 1,
      -(2 ** 31),
      2 ** 31,
      2 ** 53 + 2,
      Number.POSITIVE_INFINITY,
    ],
    packedInts: [2, 3, 5, 7, 11, -13, 300, -(2 ** 31), 2 ** 31 - 1],
    pair: [1, 2],
    bigints: [0n, -1n, 255n, -(2n ** 70n), 2n ** 200n - 1n],
    strings: ['', 'héllo', 'wörld 🎉', '\ud800 lone', 'x'.repeat(100), 'ü'.repeat(40)],
    regexp: /ab+c/gimsuy,
    boxed: [Object(1.5), Object('boxed'), Object(true), Object(false), Object(7n)],
    invalidDate: new Date(Number.NaN),
    error,
    custom,
    typeError,
    point: new GoldenPoint(3, 4),
    points: [new GoldenPoint(1, 2), new GoldenPoint(5, 6)],
    nullProto,
    proto: JSON.parse('{"__proto__": {"polluted": true}}'),
    sparse,
    head: bytes.subarray(0, 4),
    tail: new Uint16Array(bytes.buffer, 8, 4),
    dataView: new DataView(bytes.buffer, 2, 3),
    arrayBuffer: Uint8Array.of(9, 8, 7).buffer,
    // Over a buffer of its own: a pooled Buffer's offset depends on what ran before.
    buffer: Buffer.from(new TextEncoder().encode('buffer!').buffer),
    match: 'id: 42'.match(/(?<num>\d+)/),
    labelledInts,
    labelledNumbers: Object.assign([0.5, 1, 2, 3], { unit: 's', 0.5: 'half' }),
    labelledSparse,
    keyMap: new Map([
      [{ k: 1 }, 'object key'],
      [NaN, 'nan'],
    ]),
  });
  return state;
}

export const goldenMeta = {
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
};

export function goldenEnvelope() {
  return {
    state: goldenStateV2(),
    random: { algorithm: 'xoshiro128**', seed: 7, s: [1, 2, 3, 4], spare: null },
    tracked: {},
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const compression of ['none', 'brotli']) {
    const parts = packCheckpoint(goldenMeta, encodeState(goldenEnvelope()), compression);
    writeFileSync(new URL(`./v2-${compression}.ckpt`, import.meta.url), Buffer.concat(parts));
  }
}
