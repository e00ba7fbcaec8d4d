/**
 * The container layout for readers that do not decode (#16.3): readHead reads a header in at
 * most two reads, verify checks a whole streamed file.
 */
import { describe, expect, it } from 'vitest';
import { layoutCheckpoint } from '../src/codec/container.js';
import { HEAD_PROBE, readHead, readHeadAsync, verify } from '../src/codec/layout.js';
import { CorruptCheckpointError } from '../src/errors.js';
import { thrownBy } from './helpers.js';

const meta = (key = '') => ({
  name: 'job',
  ...(key === '' ? {} : { key }),
  source: {},
  createdAt: '2026-01-01T00:00:00.000Z',
  savedAt: '2026-01-01T00:00:00.000Z',
  saves: 1,
  library: 'resumable-state@0.1.0',
  node: process.version,
  host: 'test',
  pid: 1,
});

const file = (key = '') =>
  Buffer.concat(
    layoutCheckpoint(meta(key), [{ codec: 0, bytes: Buffer.from('payload'), rawBytes: 7 }]),
  );

/** A reader over `bytes` that records the lengths asked for. */
function reader(bytes: Buffer) {
  const asked: number[] = [];
  const read = (end: number) => {
    asked.push(end);
    return bytes.subarray(0, end);
  };
  return { asked, read };
}

async function* pieces(bytes: Buffer, size: number) {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
}

describe('readHead', () => {
  it('reads a small header in one read, a header longer than the probe in two', async () => {
    const small = reader(file());
    expect(readHead(small.read, 'job.ckpt').header.meta.name).toBe('job');
    expect(small.asked).toEqual([HEAD_PROBE]);
    const bytes = file('k'.repeat(HEAD_PROBE));
    const large = reader(bytes);
    const head = readHead(large.read, 'job.ckpt', bytes.byteLength);
    expect(head.header.meta.key).toBe('k'.repeat(HEAD_PROBE));
    expect(large.asked).toEqual([HEAD_PROBE, 20 + bytes.readUInt32LE(12)]);
    const remote = await readHeadAsync(async (end) => bytes.subarray(0, end), 'job.ckpt');
    expect(remote.bodyOffset).toBe(head.bodyOffset);
  });

  it('refuses a file that ends inside its header, or cannot hold it, as corrupt', () => {
    const bytes = file('k'.repeat(HEAD_PROBE));
    const short = bytes.subarray(0, HEAD_PROBE + 10);
    for (const [read, limit] of [
      [(end: number) => short.subarray(0, end), Number.POSITIVE_INFINITY],
      [(end: number) => bytes.subarray(0, end), HEAD_PROBE + 10],
    ] as const) {
      const err = thrownBy(() => readHead(read, 'job.ckpt', limit));
      expect(err).toBeInstanceOf(CorruptCheckpointError);
      expect((err as Error).message).toBe('Checkpoint file job.ckpt is corrupt: truncated');
    }
  });
});

describe('verify', () => {
  it('accepts an intact file in pieces of any size, including pieces shorter than the trailer', async () => {
    const bytes = file();
    for (const size of [1, 3, 8, 13, bytes.byteLength]) {
      expect(await verify(pieces(bytes, size))).toBe(true);
    }
  });

  it('refuses every single flipped byte, a missing end marker and a short file', async () => {
    const bytes = file();
    for (let i = 0; i < bytes.byteLength; i++) {
      const damaged = Buffer.from(bytes);
      damaged[i]! ^= 0x01;
      expect(await verify(pieces(damaged, 7))).toBe(false);
    }
    expect(await verify(pieces(bytes.subarray(0, bytes.byteLength - 1), 7))).toBe(false);
    expect(await verify(pieces(Buffer.alloc(4), 7))).toBe(false);
  });
});
