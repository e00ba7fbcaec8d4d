/**
 * Array jobs (#15): the `shard` option (explicit and 'auto' from each engine's variables),
 * loops that visit only their shard's items and resume exactly, the progress in the metadata,
 * and collectShards.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import {
  Checkpoint,
  type CheckpointOptions,
  collectShards,
  MissingShardsError,
  memoryStore,
  ShardEnvironmentError,
} from '../dist/index.js';
import { cleanedAfterEach, thrownBy } from './helpers.js';

const { open, tempDir } = cleanedAfterEach('rs-shards-');

function checkpoint<T extends object = Record<string, unknown>>(
  options: CheckpointOptions,
): Checkpoint<T> {
  const chp = new Checkpoint<T>({ signals: false, log: false, ...options });
  open.push(chp);
  return chp;
}

const VARIABLES = [
  'JOB_COMPLETION_INDEX',
  'SLURM_ARRAY_TASK_ID',
  'SLURM_ARRAY_TASK_MIN',
  'SLURM_ARRAY_TASK_COUNT',
  'AWS_BATCH_JOB_ARRAY_INDEX',
  'RESUME_SHARDS',
];
const READ =
  '(read JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN), AWS_BATCH_JOB_ARRAY_INDEX, SLURM_ARRAY_TASK_COUNT and RESUME_SHARDS)';

beforeEach(() => {
  for (const name of VARIABLES) vi.stubEnv(name, undefined);
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('the shard option', () => {
  test('names the checkpoint <name>.shard-<index>-of-<count> and records info.shard', () => {
    const dir = tempDir();
    const chp = checkpoint({ name: 'sweep', dir, shard: { index: 2, count: 5 } });
    expect(chp.name).toBe('sweep.shard-2-of-5');
    expect(chp.shard).toEqual({ index: 2, count: 5 });
    chp.restore({ n: 1 });
    chp.save();
    expect(chp.info?.shard).toEqual({ index: 2, count: 5 });
    chp.close();
    const again = checkpoint({ name: 'sweep', dir, shard: { index: 2, count: 5 } });
    again.restore({ n: 0 });
    expect(again.restored).toBe(true);
    expect(again.info?.shard).toEqual({ index: 2, count: 5 });
  });

  test('comes after the key hash in the name', () => {
    const chp = checkpoint({
      name: 'sweep',
      key: { lr: 0.1 },
      store: memoryStore(),
      shard: { index: 0, count: 2 },
    });
    expect(chp.name).toMatch(/^sweep\.[0-9a-f]+\.shard-0-of-2$/);
  });

  test.each([
    [null, TypeError, "Expected `shard` to be { index, count } or 'auto', got `null` (null)"],
    ['1/4', TypeError, "Expected `shard` to be { index, count } or 'auto', got `'1/4'` (string)"],
    [
      { index: 0 },
      TypeError,
      'Expected `shard.count` to be an integer, got `undefined` (undefined)',
    ],
    [
      { index: 0, count: 0 },
      RangeError,
      'Expected `shard.count` to be an integer from 1 to 1000000, got `0` (number)',
    ],
    [
      { index: 4, count: 4 },
      RangeError,
      'Expected `shard.index` to be an integer from 0 to 3, got `4` (number)',
    ],
    [
      { index: 1.5, count: 4 },
      RangeError,
      'Expected `shard.index` to be an integer from 0 to 3, got `1.5` (number)',
    ],
    [
      { index: '1', count: 4 },
      TypeError,
      "Expected `shard.index` to be an integer, got `'1'` (string)",
    ],
    [{ index: 1, count: 4, of: 4 }, TypeError, 'Unknown option `shard.of`'],
  ])('rejects %j with the exact error', (shard, Class, message) => {
    const err = thrownBy(
      () => new Checkpoint({ name: 'x', store: memoryStore(), shard: shard as never }),
    );
    expect(err).toBeInstanceOf(Class);
    expect((err as Error).message).toBe(message);
  });
});

describe("shard: 'auto'", () => {
  const auto = () => checkpoint({ name: 'job', store: memoryStore(), shard: 'auto' });

  test('Kubernetes Indexed Job: JOB_COMPLETION_INDEX and RESUME_SHARDS', () => {
    vi.stubEnv('JOB_COMPLETION_INDEX', '3');
    vi.stubEnv('RESUME_SHARDS', '8');
    expect(auto().shard).toEqual({ index: 3, count: 8 });
    expect(auto().name).toBe('job.shard-3-of-8');
  });

  test('SLURM array: SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT', () => {
    vi.stubEnv('SLURM_ARRAY_TASK_ID', '12');
    vi.stubEnv('SLURM_ARRAY_TASK_MIN', '10');
    vi.stubEnv('SLURM_ARRAY_TASK_COUNT', '5');
    expect(auto().shard).toEqual({ index: 2, count: 5 });
  });

  test('SLURM array without SLURM_ARRAY_TASK_MIN counts from 0', () => {
    vi.stubEnv('SLURM_ARRAY_TASK_ID', '4');
    vi.stubEnv('SLURM_ARRAY_TASK_COUNT', '5');
    expect(auto().shard).toEqual({ index: 4, count: 5 });
  });

  test('AWS Batch array job: AWS_BATCH_JOB_ARRAY_INDEX and RESUME_SHARDS', () => {
    vi.stubEnv('AWS_BATCH_JOB_ARRAY_INDEX', '0');
    vi.stubEnv('RESUME_SHARDS', '2');
    expect(auto().shard).toEqual({ index: 0, count: 2 });
  });

  test('agreeing variables are accepted', () => {
    vi.stubEnv('SLURM_ARRAY_TASK_ID', '1');
    vi.stubEnv('AWS_BATCH_JOB_ARRAY_INDEX', '1');
    vi.stubEnv('SLURM_ARRAY_TASK_COUNT', '3');
    vi.stubEnv('RESUME_SHARDS', '3');
    expect(auto().shard).toEqual({ index: 1, count: 3 });
  });

  test.each([
    [
      {},
      "shard: 'auto' found no array index: none of JOB_COMPLETION_INDEX (Kubernetes), SLURM_ARRAY_TASK_ID (SLURM), AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch) is set",
    ],
    [
      { JOB_COMPLETION_INDEX: '3' },
      "shard: 'auto' found index 3 (JOB_COMPLETION_INDEX=3) but no shard count: set RESUME_SHARDS to the number of tasks of the array",
    ],
    [
      { AWS_BATCH_JOB_ARRAY_INDEX: 'one', RESUME_SHARDS: '4' },
      `shard: 'auto' found AWS_BATCH_JOB_ARRAY_INDEX="one", not an integer >= 0`,
    ],
    [
      { JOB_COMPLETION_INDEX: '-1', RESUME_SHARDS: '4' },
      `shard: 'auto' found JOB_COMPLETION_INDEX="-1", not an integer >= 0`,
    ],
    [
      { JOB_COMPLETION_INDEX: '1', SLURM_ARRAY_TASK_ID: '2', RESUME_SHARDS: '4' },
      "shard: 'auto' found two different indexes: 1 from JOB_COMPLETION_INDEX=1, 2 from SLURM_ARRAY_TASK_ID=2 - SLURM_ARRAY_TASK_MIN=0",
    ],
    [
      { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '2', SLURM_ARRAY_TASK_COUNT: '4' },
      "shard: 'auto' found SLURM_ARRAY_TASK_ID=1 below SLURM_ARRAY_TASK_MIN=2",
    ],
    [
      { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '4', RESUME_SHARDS: '5' },
      "shard: 'auto' found two different counts: SLURM_ARRAY_TASK_COUNT=4, RESUME_SHARDS=5",
    ],
    [
      { JOB_COMPLETION_INDEX: '4', RESUME_SHARDS: '4' },
      "shard: 'auto' found index 4 (JOB_COMPLETION_INDEX=4) not below the count RESUME_SHARDS=4",
    ],
    [
      { JOB_COMPLETION_INDEX: '0', RESUME_SHARDS: '0' },
      "shard: 'auto' found RESUME_SHARDS=0, not a count from 1 to 1000000",
    ],
  ])('%j: ShardEnvironmentError naming the variables', (env, message) => {
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    const err = thrownBy(auto);
    expect(err).toBeInstanceOf(ShardEnvironmentError);
    expect((err as ShardEnvironmentError).code).toBe('CHECKPOINT_SHARD_ENV');
    expect((err as Error).message).toBe(`${message} ${READ}`);
  });
});

describe('loops of a shard', () => {
  const shardOf = (index: number, count: number, store = memoryStore()) =>
    checkpoint({ name: 'loops', store, shard: { index, count }, interval: 0 });

  test('range, each(array), each(iterable) and each(async iterable) visit i % count === index', async () => {
    const items = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    async function* stream() {
      yield* items;
    }
    const seen: string[][] = [];
    for (let index = 0; index < 3; index++) {
      const chp = shardOf(index, 3);
      chp.restore({});
      const got: string[] = [];
      for (const i of chp.range(10, 17)) got.push(`r${i}`);
      for (const x of chp.each(items)) got.push(`a${x}`);
      for (const x of chp.each(new Set(items))) got.push(`s${x}`);
      for await (const x of chp.each(stream())) got.push(`g${x}`);
      seen.push(got);
    }
    expect(seen).toEqual([
      ['r10', 'r13', 'r16', 'aa', 'ad', 'ag', 'sa', 'sd', 'sg', 'ga', 'gd', 'gg'],
      ['r11', 'r14', 'ab', 'ae', 'sb', 'se', 'gb', 'ge'],
      ['r12', 'r15', 'ac', 'af', 'sc', 'sf', 'gc', 'gf'],
    ]);
  });

  test('a loop nested in a shard’s item runs whole', () => {
    const chp = shardOf(1, 2);
    chp.restore({});
    const got: string[] = [];
    for (const i of chp.range(4)) for (const j of chp.range(3)) got.push(`${i}.${j}`);
    expect(got).toEqual(['1.0', '1.1', '1.2', '3.0', '3.1', '3.2']);
  });

  test.each(['range', 'array', 'iterable', 'async'])(
    '%s: a shard stopped mid-loop resumes at its first unfinished item, each item done once',
    async (kind) => {
      const store = memoryStore();
      const done: number[] = [];
      const values = Array.from({ length: 20 }, (_, i) => i);
      async function* stream() {
        yield* values;
      }
      const loop = (chp: Checkpoint) =>
        kind === 'range'
          ? chp.range(20)
          : kind === 'array'
            ? chp.each(values)
            : kind === 'iterable'
              ? chp.each(new Set(values))
              : chp.each(stream());
      // Each run does two items and stops in the third (as if killed), which is redone.
      for (let run = 0; run < 10; run++) {
        const chp = shardOf(1, 3, store);
        const s = chp.restore({ sum: 0 }) as { sum: number };
        let inRun = 0;
        for await (const i of loop(chp) as AsyncIterable<number>) {
          if (inRun++ === 2) break;
          s.sum += i;
          done.push(i);
        }
        chp.close();
      }
      expect(done).toEqual([1, 4, 7, 10, 13, 16, 19]);
    },
  );

  test('a source that throws while a restarted shard passes over done items keeps the position', () => {
    const store = memoryStore();
    const done: number[] = [];
    function* source(failAt?: number) {
      for (let i = 0; i < 10; i++) {
        if (i === failAt) throw new Error('source failed');
        yield i;
      }
    }
    const run = (failAt?: number, stopAt?: number) => {
      const chp = shardOf(0, 2, store);
      chp.restore({});
      try {
        for (const i of chp.each(source(failAt))) {
          if (i === stopAt) break;
          done.push(i);
        }
      } catch (err) {
        expect((err as Error).message).toBe('source failed');
        chp.save();
      }
      chp.close();
    };
    run(undefined, 4); // 0 and 2 done
    run(1); // fails while passing over the items done
    run();
    expect(done).toEqual([0, 2, 4, 6, 8]);
  });

  test('the metadata holds this shard’s items done and total', () => {
    const chp = shardOf(1, 4);
    chp.restore({});
    for (const i of chp.range(10)) {
      if (i === 5) {
        chp.save();
        expect(chp.info?.progress).toEqual({ done: 1, total: 3 });
      }
    }
    for (const _ of chp.each(new Set([1, 2, 3, 4, 5, 6]))) {
      chp.save();
      expect(chp.info?.progress).toEqual({ done: 3, total: 5 });
      break;
    }
    for (const _ of chp.each(
      (function* () {
        yield* [1, 2, 3, 4, 5, 6];
      })(),
    )) {
      chp.save();
      expect(chp.info?.progress).toEqual({ done: 3 });
      break;
    }
    chp.close();
  });
});

describe('progress metadata', () => {
  test('counts finished iterables and is absent without loops', () => {
    const store = memoryStore();
    const chp = checkpoint({ name: 'p', store, shard: { index: 0, count: 2 } });
    chp.restore({});
    chp.save();
    expect(chp.info?.progress).toBeUndefined();
    for (const _ of chp.range(5));
    for (const _ of chp.each(
      (function* () {
        yield* [1, 2, 3];
      })(),
    ));
    chp.save();
    expect(chp.info?.progress).toEqual({ done: 5, total: 5 });
  });
});

describe('collectShards', () => {
  function saveShard(
    dir: string,
    index: number,
    count: number,
    state: Record<string, unknown>,
  ): void {
    const chp = checkpoint({ name: 'sweep', dir, shard: { index, count } });
    chp.restore(state);
    chp.save();
    chp.close();
  }

  test('returns every shard’s state in index order, while a holder runs', () => {
    const dir = tempDir();
    for (const index of [2, 0, 1]) saveShard(dir, index, 3, { index, items: [index * 10] });
    const running = checkpoint({ name: 'sweep', dir, shard: { index: 1, count: 3 } });
    running.restore({});
    expect(collectShards('sweep', { count: 3, dir })).toEqual([
      { index: 0, items: [0] },
      { index: 1, items: [10] },
      { index: 2, items: [20] },
    ]);
  });

  test('reads from a given store', () => {
    const store = memoryStore();
    const chp = checkpoint({ name: 'm', store, shard: { index: 0, count: 1 } });
    chp.restore({ x: 1 });
    chp.save();
    expect(collectShards('m', { count: 1, store })).toEqual([{ x: 1 }]);
  });

  test('lists the shards that have no checkpoint', () => {
    const dir = tempDir();
    saveShard(dir, 1, 4, { a: 1 });
    const err = thrownBy(() => collectShards('sweep', { count: 4, dir }));
    expect(err).toBeInstanceOf(MissingShardsError);
    expect((err as MissingShardsError).code).toBe('CHECKPOINT_SHARDS_MISSING');
    expect((err as MissingShardsError).missing).toEqual([0, 2, 3]);
    expect((err as Error).message).toBe(
      `3 of 4 shards of "sweep" have no checkpoint: 0, 2, 3 (sweep.shard-0-of-4, sweep.shard-2-of-4, sweep.shard-3-of-4 in ${dir}/sweep.shard-0-of-4.ckpt)`,
    );
  });

  test.each([
    [{}, TypeError, 'Expected `count` to be an integer, got `undefined` (undefined)'],
    [
      { count: 0 },
      RangeError,
      'Expected `count` to be an integer from 1 to 1000000, got `0` (number)',
    ],
    [{ count: 2, shards: 2 }, TypeError, 'Unknown option `shards`'],
  ])('rejects options %j', (options, Class, message) => {
    const err = thrownBy(() => collectShards('x', options as never));
    expect(err).toBeInstanceOf(Class);
    expect((err as Error).message).toBe(message);
  });
});
