/**
 * #11.11: files with valid checksums whose envelope is not what this library writes
 * (crafted, or written by something else) are corrupt: restore() never returns `null` or
 * `5`, and `resume show`/readCheckpointFile refuse them the same way.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { packCheckpoint } from '../dist/codec/container.js';
import { encodeState } from '../dist/codec/serializer.js';
import { Checkpoint, CorruptCheckpointError, readCheckpointFile } from '../dist/index.js';
import { cleanedAfterEach, fileMeta, thrownBy } from './helpers.js';

const { tempDir } = cleanedAfterEach('rs-envelope-');

const meta = fileMeta();
const random = { algorithm: 'xoshiro128**', seed: 7, s: [1, 2, 3, 4], spare: null };
const good = { state: { n: 1 }, random, tracked: {} };

/** Writes `envelope` with the real writer (valid checksums) as checkpoint `job` of a new folder. */
function craftedFolder(envelope: unknown): string {
  const dir = tempDir();
  const parts = packCheckpoint(meta, encodeState(envelope as Record<string, unknown>), 'none');
  writeFileSync(join(dir, 'job.ckpt'), Buffer.concat(parts));
  return dir;
}

function restoreFrom(dir: string): unknown {
  const chp = new Checkpoint({ name: 'job', dir, log: false, signals: false });
  try {
    return chp.restore({ fresh: true });
  } finally {
    chp.close();
  }
}

const step = (key: string, extra: Record<string, unknown> = {}) => ({
  key,
  ok: true,
  value: 1,
  attempts: 1,
  ...extra,
});

describe('envelopes of the wrong shape behind valid checksums', () => {
  test('the well-formed envelope restores (the crafting is sound)', () => {
    expect(restoreFrom(craftedFolder(good))).toEqual({ n: 1, fresh: true });
  });

  test.each<[string, unknown, string]>([
    ['null', null, 'the envelope is null'],
    ['a number', 5, 'the envelope is 5 (number)'],
    ['an array', [good], 'the envelope is an array'],
    ['state null', { ...good, state: null }, '`state` is null'],
    ['state 5', { ...good, state: 5 }, '`state` is 5 (number)'],
    ['state a string', { ...good, state: 'x' }, '`state` is "x"'],
    ['no state', { random, tracked: {} }, '`state` is undefined'],
    ['no random', { state: {}, tracked: {} }, '`random` is undefined'],
    ['tracked null', { ...good, tracked: null }, '`tracked` is null'],
    ['tracked a Map', { ...good, tracked: new Map() }, '`tracked` is a Map'],
    ['loops a plain object', { ...good, loops: { a: 1 } }, '`loops` is an object'],
    [
      'loops with NaN',
      { ...good, loops: new Map([['a', Number.NaN]]) },
      '`loops` holds "a" → NaN (number)',
    ],
    ['loops with -1', { ...good, loops: new Map([['a', -1]]) }, '`loops` holds "a" → -1 (number)'],
    [
      'loops with a number key',
      { ...good, loops: new Map([[1, 1]]) },
      '`loops` holds 1 (number) → 1 (number)',
    ],
    ['steps an array', { ...good, steps: [] }, '`steps` is an array'],
    [
      'a step that is null',
      { ...good, steps: new Map([['a', null]]) },
      'step "a": the record is null',
    ],
    [
      'a step without attempts',
      { ...good, steps: new Map([['a', step('a', { attempts: undefined })]]) },
      'step "a": `attempts` is undefined',
    ],
    [
      'a step whose ok is a string',
      { ...good, steps: new Map([['a', step('a', { ok: 'yes' })]]) },
      'step "a": `ok` is "yes"',
    ],
    [
      'a failed step without an error',
      { ...good, steps: new Map([['a', step('a', { ok: false })]]) },
      'step "a": `error` is undefined',
    ],
    [
      'a step filed under another key',
      { ...good, steps: new Map([['a', step('b')]]) },
      'step "a" holds another key',
    ],
    ['stepsFrom a string', { ...good, stepsFrom: '3' }, '`stepsFrom` is "3"'],
    [
      'stepsFrom Infinity',
      { ...good, stepsFrom: Number.POSITIVE_INFINITY },
      '`stepsFrom` is Infinity (number)',
    ],
  ])('%s: restore() and readCheckpointFile throw CorruptCheckpointError', (_, envelope, why) => {
    const dir = craftedFolder(envelope);
    const file = join(dir, 'job.ckpt');
    const prefix = `Checkpoint file ${file} is corrupt: its contents are not a saved state (${why}`;
    const restoring = thrownBy(() => restoreFrom(dir));
    expect(restoring).toBeInstanceOf(CorruptCheckpointError);
    expect((restoring as CorruptCheckpointError).code).toBe('CHECKPOINT_CORRUPT');
    expect((restoring as Error).message.startsWith(prefix)).toBe(true);
    const reading = thrownBy(() => readCheckpointFile(file));
    expect(reading).toBeInstanceOf(CorruptCheckpointError);
    expect((reading as Error).message.startsWith(prefix)).toBe(true);
  });

  test.each<[string, unknown, string]>([
    [
      'another algorithm',
      { ...random, algorithm: 'mt' },
      'Expected `state.algorithm` to be "xoshiro128**", got `"mt"`',
    ],
    ['all-zero words', { ...random, s: [0, 0, 0, 0] }, 'Expected `state.s` not to be all zero'],
  ])('a random state of %s: restore() throws CorruptCheckpointError', (_, bad, why) => {
    const dir = craftedFolder({ ...good, random: bad });
    const restoring = thrownBy(() => restoreFrom(dir));
    expect(restoring).toBeInstanceOf(CorruptCheckpointError);
    expect((restoring as Error).message).toContain(
      `Checkpoint file ${join(dir, 'job.ckpt')} could not be restored: ${why}`,
    );
  });

  test('well-formed optional parts restore: loops, steps (done and failed), stepsFrom', () => {
    const envelope = {
      ...good,
      loops: new Map([['a.mjs:1:1', 3]]),
      steps: new Map<string, unknown>([
        ['a', step('a')],
        [
          'b',
          { key: 'b', ok: false, error: { name: 'Error', message: 'no', code: 'E' }, attempts: 2 },
        ],
      ]),
      stepsFrom: 17,
    };
    const dir = craftedFolder(envelope);
    const chp = new Checkpoint({ name: 'job', dir, log: false, signals: false });
    expect(chp.restore({})).toEqual({ n: 1 });
    expect(chp.failed()).toEqual(['b']);
    chp.close();
  });
});
