import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { FORMAT_VERSION, unpackCheckpoint } from '../dist/codec/container.js';
// @ts-expect-error: a plain .mjs helper without types
import { goldenState } from './golden/make-golden.mjs';

describe('format version 1 golden files', () => {
  test.each(['none', 'brotli'])(
    'v1-%s.ckpt still reads, with its metadata and exact state',
    (codec) => {
      const path = new URL(`./golden/v1-${codec}.ckpt`, import.meta.url).pathname;
      const { meta, envelope } = unpackCheckpoint(readFileSync(path), path);
      expect(FORMAT_VERSION).toBe(1);
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
