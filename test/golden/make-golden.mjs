// Writes the golden files of format version 1. Run once by hand (node test/golden/make-golden.mjs)
// when a new format version is introduced; the files of older versions must never change.
import { writeFileSync } from 'node:fs';
import { packCheckpoint } from '../../dist/codec/container.js';
import { encodeState } from '../../dist/codec/serializer.js';

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

const meta = {
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
const envelope = {
  state: goldenState(),
  random: { algorithm: 'xoshiro128**', seed: 7, s: [1, 2, 3, 4], spare: null },
  tracked: {},
};
if (import.meta.url === `file://${process.argv[1]}`) {
  for (const compression of ['none', 'brotli']) {
    const parts = packCheckpoint(meta, encodeState(envelope), compression);
    writeFileSync(new URL(`./v1-${compression}.ckpt`, import.meta.url), Buffer.concat(parts));
  }
}
