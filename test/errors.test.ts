/**
 * #16.5: every failure is one of our error classes, keeping the original as `cause`; an
 * unknown lock holder is always the same placeholder.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { decompressChunk } from '../src/codec/compression.js';
import {
  CheckpointLockedError,
  CorruptCheckpointError,
  StoreError,
  UNKNOWN_OWNER,
  UnsupportedFormatError,
} from '../src/errors.js';
import { Checkpoint, memoryStore } from '../src/index.js';
import { readCheckpointInfo } from '../src/inspect.js';
import { rebuildError } from '../src/writer/writer.js';
import { cleanedAfterEach, thrownBy } from './helpers.js';

const { tempDir, open } = cleanedAfterEach('rs-errors-');

describe('CheckpointLockedError', () => {
  test('keeps a cause', () => {
    const cause = new Error('EACCES');
    const err = new CheckpointLockedError('locked', { pid: 7, host: 'h' }, { cause });
    expect({ cause: err.cause, pid: err.pid, host: err.host, code: err.code }).toEqual({
      cause,
      pid: 7,
      host: 'h',
      code: 'CHECKPOINT_LOCKED',
    });
  });

  test('rebuilt from the background thread, keeps its owner and its cause', () => {
    const err = rebuildError({
      name: 'CheckpointLockedError',
      code: 'CHECKPOINT_LOCKED',
      message: 'taken over',
      owner: { pid: 12, host: 'there' },
      cause: { name: 'Error', message: 'fenced', code: 'EFENCE' },
    });
    expect(err).toBeInstanceOf(CheckpointLockedError);
    expect({ ...(err as CheckpointLockedError) }).toMatchObject({ pid: 12, host: 'there' });
    expect(err.cause).toBeInstanceOf(Error);
    expect({
      message: (err.cause as Error).message,
      code: (err.cause as { code: string }).code,
    }).toEqual({ message: 'fenced', code: 'EFENCE' });
  });

  test('rebuilt without an owner, names the one unknown owner', () => {
    const err = rebuildError({
      name: 'CheckpointLockedError',
      code: 'CHECKPOINT_LOCKED',
      message: 'm',
    });
    expect({
      pid: (err as CheckpointLockedError).pid,
      host: (err as CheckpointLockedError).host,
    }).toEqual({ pid: 0, host: 'unknown' });
    expect(UNKNOWN_OWNER).toEqual({ pid: 0, host: 'unknown' });
  });
});

test('the memory store reading a generation that does not exist throws StoreError', () => {
  const store = memoryStore();
  const err = thrownBy(() => store.read('x', { index: 3, location: 'memory:x#3' }));
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe('CHECKPOINT_STORE');
  expect((err as Error).message).toBe('memory:x#3 does not exist');
});

test('readCheckpointInfo of a file cut inside its header throws CorruptCheckpointError', () => {
  const store = memoryStore();
  const chp = new Checkpoint({ name: 'cut', store, log: false, signals: false });
  open.push(chp);
  chp.restore({ big: 'x'.repeat(200) });
  chp.save();
  const [latest] = store.generations('cut');
  const bytes = store.read('cut', latest!);
  const file = join(tempDir(), 'cut.ckpt');
  writeFileSync(file, bytes.subarray(0, 30));
  const err = thrownBy(() => readCheckpointInfo(file));
  expect(err).toBeInstanceOf(CorruptCheckpointError);
  expect((err as Error).message).toBe(`Checkpoint file ${file} is corrupt: truncated`);
});

describe('decompressChunk', () => {
  test('a chunk of another length is corrupt, named with its file', () => {
    const err = thrownBy(() => decompressChunk(0, new Uint8Array(4), 5, 'a.ckpt'));
    expect(err).toBeInstanceOf(CorruptCheckpointError);
    expect((err as Error).message).toBe(
      'Checkpoint file a.ckpt could not be decoded: chunk decompressed to 4 bytes, expected 5',
    );
  });

  test('an unknown codec is a newer format, not damage: UnsupportedFormatError (#16.7)', () => {
    const err = thrownBy(() => decompressChunk(9, new Uint8Array(4), 4));
    expect(err).toBeInstanceOf(UnsupportedFormatError);
    expect((err as Error).message).toBe(
      'unknown codec 9: written by a newer version of resumable-state',
    );
  });
});
