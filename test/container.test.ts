/** The container writer (src/codec/container.ts): what packCheckpoint hands back. */
import { expect, test } from 'vitest';
import { packCheckpoint, unpackCheckpoint } from '../dist/codec/container.js';
import { encodeState } from '../dist/codec/serializer.js';

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
