/**
 * A file another runtime wrote and this one cannot read fails loudly, naming the writer's
 * runtime (UnsupportedFormatError), never as a corrupt file (#12.4). Measured: an Error with
 * a `cause` written by Node 20 cannot be decoded by Node 22, 24 or 26 (V8 reordered its
 * fields); a future V8 may raise its wire format version again.
 */
import { describe, expect, test } from 'vitest';
import { crc32 } from '../dist/codec/checksum.js';
import { packCheckpoint, unpackCheckpoint } from '../dist/codec/container.js';
import { encodeV8State } from '../dist/codec/v8-state.js';
import { CorruptCheckpointError, UnsupportedFormatError } from '../dist/index.js';
import { thrownBy } from './helpers.js';

const meta = (node: string) => ({
  name: 'job',
  source: {},
  createdAt: '2026-01-01T00:00:00.000Z',
  savedAt: '2026-01-01T00:00:00.000Z',
  saves: 1,
  library: 'resumable-state@0.1.0',
  node,
  host: 'h',
  pid: 1,
});

/** An intact format 1 file (checksums hold) whose v8 structure is `patch`ed. */
function fileWith(node: string, patch: (structure: Buffer) => Buffer): Buffer {
  const encoded = encodeV8State({ state: { n: 1 }, random: 5, tracked: {} });
  const parts = packCheckpoint(
    meta(node),
    { ...encoded, structure: patch(encoded.structure) },
    'none',
  );
  return asFormat1(Buffer.concat(parts));
}

/** The same file stamped format version 1, both checksums recomputed (#13.1: v2 is written). */
function asFormat1(file: Buffer): Buffer {
  const out = Buffer.from(file);
  out.writeUInt16LE(1, 8);
  const headerLength = out.readUInt32LE(12);
  out.writeUInt32LE(crc32(out.subarray(20, 20 + headerLength), crc32(out.subarray(0, 16))), 16);
  out.writeUInt32LE(crc32(out.subarray(0, out.byteLength - 8)), out.byteLength - 8);
  return out;
}

describe('files this runtime cannot read', () => {
  test('a newer V8 wire format version is UnsupportedFormatError naming the writer', () => {
    const file = fileWith('v99.1.0', (s) =>
      Buffer.concat([Buffer.from([0xff, 0x7f]), s.subarray(2)]),
    );
    const err = thrownBy(() => unpackCheckpoint(file, 'job.ckpt')) as UnsupportedFormatError;
    expect(err).toBeInstanceOf(UnsupportedFormatError);
    expect(err.code).toBe('CHECKPOINT_FORMAT');
    expect(err.message).toMatch(
      /^Checkpoint file job\.ckpt holds V8 serialization format 127, written by Node v99\.1\.0; Node v\d+\.\d+\.\d+ reads up to format \d+\. Restore it with a newer Node\.$/,
    );
  });

  test('intact bytes that do not decode, written by another Node major: UnsupportedFormatError', () => {
    // A tag V8 does not know, after a valid header: what Node 22 sees in Node 20's error causes.
    const file = fileWith('v99.1.0', (s) => Buffer.concat([s.subarray(0, 2), Buffer.from([0x01])]));
    const err = thrownBy(() => unpackCheckpoint(file, 'job.ckpt')) as UnsupportedFormatError;
    expect(err).toBeInstanceOf(UnsupportedFormatError);
    expect(err.code).toBe('CHECKPOINT_FORMAT');
    expect(err.message).toMatch(
      /^Checkpoint file job\.ckpt was written by Node v99\.1\.0 and cannot be decoded by Node v\d+\.\d+\.\d+: .+ Restore it with Node 99\.$/,
    );
  });

  test('the same bytes written by this Node major stay CorruptCheckpointError', () => {
    const file = fileWith(process.version, (s) =>
      Buffer.concat([s.subarray(0, 2), Buffer.from([0x01])]),
    );
    const err = thrownBy(() => unpackCheckpoint(file, 'job.ckpt'));
    expect(err).toBeInstanceOf(CorruptCheckpointError);
    expect((err as CorruptCheckpointError).code).toBe('CHECKPOINT_CORRUPT');
  });
});
