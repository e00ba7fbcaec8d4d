/**
 * The save and restore hot paths of issue 17: the checksum computed while the body is
 * written (deferred, then sealed by the file store), restore still verifying every byte
 * before decoding, and the staging buffer of sync() prepared ahead of the first one. Correctness only:
 * the speed is measured by `npm run bench`, never asserted here.
 */
import nodeFs, { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { crc32 } from '../dist/codec/checksum.js';
import {
  isUnsealed,
  packCheckpoint,
  sealCheckpoint,
  unpackCheckpoint,
} from '../dist/codec/container.js';
import { encodeState } from '../dist/codec/serializer.js';
import { Checkpoint, CorruptCheckpointError, fileStore } from '../dist/index.js';
import {
  estimateStateBytes,
  prefaultStep,
  readStaged,
  stageSnapshot,
  stagingBytesFor,
  TOUCH_STEP,
  touchPages,
} from '../dist/writer/staging.js';
import { BackgroundWriter } from '../dist/writer/writer.js';
import { cleanedAfterEach, thrownBy } from './helpers.js';

const { tempDir, open } = cleanedAfterEach('rs-hot-');

const meta = {
  name: 'hot',
  source: {},
  createdAt: '2026-12-05T00:00:00.000Z',
  savedAt: '2026-12-05T00:00:00.000Z',
  saves: 1,
  library: 'test',
  node: process.version,
  host: 'test',
  pid: 1,
};

/** An envelope of `mb` MiB of doubles counting up, so every slice differs. */
function envelopeOf(mb: number) {
  const data = new Float64Array((mb * 2 ** 20) / 8);
  for (let i = 0; i < data.length; i++) data[i] = i * 1.5;
  return { state: { data, label: 'hot' }, random: {}, tracked: {} };
}

const concat = (parts: Uint8Array[]) => Buffer.concat(parts.map((p) => Buffer.from(p)));

describe('checksum computed while writing (#17.1)', () => {
  it('deferred parts, once sealed, are byte for byte the parts packed with their checksum', () => {
    const encoded = encodeState(envelopeOf(3));
    const sealed = packCheckpoint(meta, encoded, 'none');
    const deferred = packCheckpoint(meta, encoded, 'none', { deferChecksum: true });
    expect(isUnsealed(sealed)).toBe(false);
    expect(isUnsealed(deferred)).toBe(true);
    sealCheckpoint(deferred);
    expect(isUnsealed(deferred)).toBe(false);
    expect(concat(deferred).equals(concat(sealed))).toBe(true);
    // Sealing again changes nothing.
    sealCheckpoint(deferred);
    expect(concat(deferred).equals(concat(sealed))).toBe(true);
  });

  it('deferred parts written unsealed by mistake never pass for a checkpoint', () => {
    const deferred = packCheckpoint(meta, encodeState(envelopeOf(1)), 'none', {
      deferChecksum: true,
    });
    const err = thrownBy(() => unpackCheckpoint(concat(deferred), 'unsealed.ckpt'));
    expect(err).toBeInstanceOf(CorruptCheckpointError);
    expect((err as Error).message).toBe('Checkpoint file unsealed.ckpt is corrupt: bad end marker');
  });

  it.each([
    ['node:fs (checksum during the early flush)', undefined],
    ['a custom fs', { fs: { ...nodeFs } }],
  ])('the file store seals deferred parts as it writes them, with %s', (_, options) => {
    const dir = tempDir();
    const store = fileStore(dir, options);
    expect(store.sealsChecksum).toBe(true);
    const encoded = encodeState(envelopeOf(3));
    const expected = concat(packCheckpoint(meta, encoded, 'none'));
    for (let save = 0; save < 3; save++) {
      store.write('hot', packCheckpoint(meta, encoded, 'none', { deferChecksum: true }), 2);
      expect(readFileSync(store.locate('hot')).equals(expected)).toBe(true);
    }
    // Older generations shifted as before: the latest and one more.
    expect(store.generations('hot').map((g) => g.index)).toEqual([0, 1]);
    expect(readFileSync(store.generations('hot')[1]!.location).equals(expected)).toBe(true);
  });

  it('the dropped generation is let go only after the folder fsync that publishes the new one', () => {
    const dir = tempDir();
    const store = fileStore(dir);
    const parts = () => packCheckpoint(meta, encodeState(envelopeOf(1)), 'none');
    store.write('hot', parts(), 2);
    store.write('hot', parts(), 2);
    // Observed, not faked: the store writes through node:fs itself, as in production.
    const events: string[] = [];
    const folders = new Set<number>();
    const generations = new Set<number>();
    const { openSync, fsyncSync, close } = nodeFs;
    const spies = [
      vi.spyOn(nodeFs, 'openSync').mockImplementation((...args: Parameters<typeof openSync>) => {
        const fd = openSync(...args);
        if (args[0] === dir) folders.add(fd);
        else if (/\.ckpt(\.1)?$/.test(String(args[0]))) generations.add(fd);
        return fd;
      }),
      vi.spyOn(nodeFs, 'fsyncSync').mockImplementation((fd) => {
        if (folders.has(fd as number)) events.push('fsync folder');
        return fsyncSync(fd);
      }),
      vi.spyOn(nodeFs, 'close').mockImplementation(((fd: number, callback: () => void) => {
        if (generations.has(fd)) events.push('let go of a generation');
        return close(fd, callback);
      }) as typeof close),
    ];
    try {
      store.write('hot', parts(), 2);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    expect(events).toEqual(['fsync folder', 'let go of a generation', 'let go of a generation']);
    expect(store.generations('hot').map((g) => g.index)).toEqual([0, 1]);
  });

  it('a durable save() and a sync() write files that restore to the saved state', async () => {
    const dir = tempDir();
    const chp = new Checkpoint({ name: 'hot', dir, interval: 0, signals: false, log: false });
    open.push(chp);
    const state = chp.restore(envelopeOf(3).state);
    chp.save();
    state.data[7] = -1;
    chp.sync();
    await chp.flush();
    const { envelope } = unpackCheckpoint(readFileSync(chp.location), chp.location);
    const restored = envelope.state as { data: Float64Array; label: string };
    expect(restored.label).toBe('hot');
    expect(Buffer.from(restored.data.buffer).equals(Buffer.from(state.data.buffer))).toBe(true);
  });
});

describe('restore verifies every byte before decoding (#17.3)', () => {
  it('a checksum continued over pieces equals the one-shot checksum', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.nat(64), (bytes, step) => {
        const size = step + 1;
        let crc = 0;
        for (let at = 0; at < bytes.length; at += size)
          crc = crc32(bytes.subarray(at, at + size), crc);
        expect(crc).toBe(crc32(bytes));
      }),
    );
  });

  // 10 MiB of payload: a byte changed anywhere is caught by the checksum before a byte is
  // decoded, whether read from memory or from the file.
  const file = concat(packCheckpoint(meta, encodeState(envelopeOf(10)), 'none'));
  const MiB = 2 ** 20;
  it.each([
    ['the header end', 4096],
    ['the first MiB of payload', 2 * MiB + 17],
    ['the middle', 5 * MiB + 3],
    ['the last bytes', file.byteLength - 100],
  ])('a byte changed in %s is detected', (_, at) => {
    const damaged = Buffer.from(file);
    damaged[at] = damaged[at]! ^ 0x40;
    const inMemory = thrownBy(() => unpackCheckpoint(damaged, 'damaged.ckpt'));
    expect(inMemory).toBeInstanceOf(CorruptCheckpointError);
    expect((inMemory as Error).message).toMatch(
      /^Checkpoint file damaged\.ckpt is corrupt: checksum mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)$/,
    );

    const dir = tempDir();
    const store = fileStore(dir);
    writeFileSync(store.locate('hot'), damaged);
    const chp = new Checkpoint({ name: 'hot', dir, interval: '1h', signals: false, log: false });
    open.push(chp);
    const fromFile = thrownBy(() => chp.restore({ data: new Float64Array(0), label: '' }));
    expect(fromFile).toBeInstanceOf(CorruptCheckpointError);
    expect((fromFile as Error).message).toContain('checksum mismatch');
  });

  it('an intact file restores exactly', () => {
    const restored = unpackCheckpoint(file, 'intact.ckpt').envelope.state as {
      data: Float64Array;
    };
    expect(restored.data.length).toBe((10 * MiB) / 8);
    expect(restored.data[0]).toBe(0);
    expect(restored.data[restored.data.length - 1]).toBe((restored.data.length - 1) * 1.5);
  });
});

describe('staging buffer prepared before the first sync() (#17.2)', () => {
  it('estimates the typed-array bytes of a fresh state, bounded in depth', () => {
    const state = {
      a: new Float64Array(1000),
      nested: { b: new Uint8Array(300), list: [new Int32Array(10)] },
      map: new Map([[1, new ArrayBuffer(64)]]),
      deep: { x: { y: { z: new Uint8Array(1 << 20) } } },
      n: 1,
    };
    expect(estimateStateBytes(state)).toBe(8000 + 300 + 40 + 64);
    expect(estimateStateBytes({ n: 1, s: 'text' })).toBe(0);
    expect(stagingBytesFor(1000) % 8).toBe(0);
  });

  it('touching the pages of a buffer keeps every byte in it', () => {
    const buffer = new SharedArrayBuffer(3 * 4096 + 12);
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
    const before = Buffer.from(bytes);
    touchPages(buffer);
    expect(Buffer.from(bytes).equals(before)).toBe(true);
  });

  it('touching a range of pages keeps every byte in the buffer', () => {
    const buffer = new SharedArrayBuffer(5 * 4096 + 12);
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 13) & 0xff;
    const before = Buffer.from(bytes);
    touchPages(buffer, 4096, 3 * 4096);
    touchPages(buffer, 4 * 4096, buffer.byteLength + 4096);
    expect(Buffer.from(bytes).equals(before)).toBe(true);
  });

  it('the prefault steps through the buffer, and holds while a save runs on the main thread (#17.1)', () => {
    let saving: Int32Array | undefined;
    const background = {
      alive: true,
      prefault: (_: SharedArrayBuffer, s: Int32Array) => (saving = s),
    };
    const writer = new BackgroundWriter(
      background as never,
      {} as never,
      new Int32Array(new SharedArrayBuffer(4)),
      'hot',
      () => {},
    );
    try {
      writer.prepare(2.5 * TOUCH_STEP);
      expect(saving).toBeInstanceOf(Int32Array);
      const buffer = new SharedArrayBuffer(2.5 * TOUCH_STEP);
      const release = writer.holdPrefault();
      const second = writer.holdPrefault();
      expect(prefaultStep(buffer, saving!, 0)).toBe(0); // held: nothing touched
      release();
      expect(prefaultStep(buffer, saving!, 0)).toBe(0); // still held by the second
      second();
      expect(prefaultStep(buffer, saving!, 0)).toBe(TOUCH_STEP);
      expect(prefaultStep(buffer, saving!, TOUCH_STEP)).toBe(2 * TOUCH_STEP);
      expect(prefaultStep(buffer, saving!, 2 * TOUCH_STEP)).toBe(2.5 * TOUCH_STEP);
      expect(prefaultStep(buffer, saving!, 2.5 * TOUCH_STEP)).toBe(2.5 * TOUCH_STEP); // done
    } finally {
      writer.close();
    }
  });

  it('a snapshot staged into a prepared buffer reads back as one staged into a new buffer', () => {
    const encoded = encodeState(envelopeOf(2));
    const descriptor = { name: 'hot', keep: 2, compression: 'none' as const, meta };
    const prepared = new SharedArrayBuffer(stagingBytesFor(2 * 2 ** 20));
    touchPages(prepared);
    const into = stageSnapshot(prepared, descriptor, encoded);
    expect(into).toBe(prepared); // it fit: no new buffer
    const fresh = readStaged(stageSnapshot(undefined, descriptor, encoded));
    const reused = readStaged(into);
    expect(reused.descriptor).toEqual(fresh.descriptor);
    expect(Buffer.from(reused.encoded.structure).equals(Buffer.from(fresh.encoded.structure))).toBe(
      true,
    );
    expect(reused.encoded.segments.map((s) => Buffer.from(s).toString('hex'))).toEqual(
      fresh.encoded.segments.map((s) => Buffer.from(s).toString('hex')),
    );
  });

  it('the first sync() after restoring a large state saves the same payload as save()', async () => {
    const dir = tempDir();
    const chp = new Checkpoint({ name: 'hot', dir, interval: 0, signals: false, log: false });
    open.push(chp);
    const state = chp.restore(envelopeOf(4).state);
    chp.sync();
    await chp.flush();
    const synced = readFileSync(chp.location);
    chp.save();
    const saved = readFileSync(chp.location);
    const payload = (file: Buffer) =>
      unpackCheckpoint(file, 'x').envelope.state as { data: Float64Array; label: string };
    expect(Buffer.from(payload(synced).data.buffer).equals(Buffer.from(state.data.buffer))).toBe(
      true,
    );
    expect(payload(synced)).toEqual(payload(saved));
    expect(synced.byteLength).toBe(saved.byteLength);
  });
});
