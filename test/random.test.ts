import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Random, type RandomState } from '../src/random.js';

const MAX = Number.MAX_SAFE_INTEGER;

/**
 * Shrinking a failing double property can crawl for minutes (every nearby
 * pair of huge bounds is another counterexample): cap the time so that a
 * regression fails fast instead of hanging.
 */
const fcOptions = { interruptAfterTimeLimit: 20_000, markInterruptAsFailure: true };

/** A generator positioned at the raw xoshiro128** state `s`. */
function at(s: [number, number, number, number], spare: number | null = null): Random {
  return Random.fromState({ algorithm: 'xoshiro128**', seed: 0, s, spare });
}

function draws<T>(n: number, f: () => T): T[] {
  return Array.from({ length: n }, f);
}

function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  return { mean, sd: Math.sqrt(variance) };
}

/** Pearson chi-square statistic of observed counts against equal expected counts. */
function chiSquare(counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((a, c) => a + (c - expected) ** 2 / expected, 0);
}

describe('xoshiro128** known answers (reference C implementation)', () => {
  // Produced by test/golden/random/xoshiro128starstar-ref.c (Blackman & Vigna's
  // reference code plus splitmix64), compiled with gcc; its output is kept in
  // test/golden/random/xoshiro128starstar-ref.txt. Not compiled at test time.

  it('produces the reference outputs from s = {1, 2, 3, 4}', () => {
    const r = at([1, 2, 3, 4]);
    expect(draws(20, r.uint32)).toEqual([
      11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597,
      4258142804, 337829053, 2142557243, 3576906021, 2006103318, 3870238204, 1001584594, 3804789018,
      2299676403, 3571406116, 2962224741,
    ]);
    expect(r.getState().s).toEqual([2573144539, 2122557695, 2957551883, 1847963737]);
  });

  it('produces the reference outputs from a state with high bits set', () => {
    const r = at([0x9e3779b9, 0x7f4a7c15, 0xdeadbeef, 0x00000001]);
    expect(draws(5, r.uint32)).toEqual([199744174, 3631572119, 953920755, 710387513, 2954972263]);
  });

  it('jump() matches the reference jump (2^64 steps)', () => {
    const r = at([1, 2, 3, 4]);
    r.jump();
    expect(r.getState().s).toEqual([2843103750, 2038079848, 1533207345, 44816753]);
    expect(draws(4, r.uint32)).toEqual([1194304935, 745561276, 25819468, 3320478005]);
  });

  it('longJump() matches the reference long jump (2^96 steps)', () => {
    const r = at([1, 2, 3, 4]);
    r.longJump();
    expect(r.getState().s).toEqual([1611968294, 2125834322, 966769569, 3193880526]);
    expect(draws(4, r.uint32)).toEqual([4148901660, 60341234, 3638978148, 2927796021]);
  });

  it('expands number seeds with splitmix64: s = [lo(o1), hi(o1), lo(o2), hi(o2)]', () => {
    expect(new Random(0).getState().s).toEqual([2065550767, 3793791033, 2713282036, 1853398634]);
    expect(new Random(1).getState().s).toEqual([2298633409, 2433363436, 1703865447, 3203108257]);
    expect(new Random(42).getState().s).toEqual([803958421, 3184996902, 2993090819, 686809907]);
    expect(new Random(MAX).getState().s).toEqual([4021704095, 616124332, 3074421144, 818148089]);
  });

  it('hashes string seeds: SHA-256 of UTF-8, first 8 bytes big-endian, then splitmix64', () => {
    // sha256("hello") = 2cf24dba5fb0a30e…; splitmix64 from 0x2cf24dba5fb0a30e
    // (checked independently in Python) gives this state.
    const r = new Random('hello');
    expect(r.seed).toBe('hello');
    expect(r.getState().s).toEqual([1907216855, 603565237, 2384925670, 572709692]);
    expect(new Random('').getState().s).toEqual([1095763075, 3590359552, 1741802801, 4294439159]);
    expect(new Random('42').getState().s).not.toEqual(new Random(42).getState().s);
  });
});

describe('golden outputs of new Random(42)', () => {
  // These sequences are part of the public contract: a checkpoint written by
  // one version must resume identically in another. Changing any of them is a
  // breaking change and may only happen in a major version.

  it('next()', () => {
    const r = new Random(42);
    expect(draws(5, r.next)).toEqual([
      0.4137016681565887, 0.003983993377814743, 0.6500837027638867, 0.6846020186141416,
      0.8306474885481525,
    ]);
  });

  it('uint32()', () => {
    const r = new Random(42);
    expect(draws(5, r.uint32)).toEqual([1776835114, 4165204688, 17111135, 2317295270, 2792088233]);
  });

  it('int(1, 6)', () => {
    const r = new Random(42);
    expect(draws(20, () => r.int(1, 6))).toEqual([
      5, 3, 6, 3, 6, 5, 6, 6, 1, 6, 4, 3, 1, 2, 5, 4, 2, 4, 2, 2,
    ]);
  });

  it('int(0, Number.MAX_SAFE_INTEGER)', () => {
    const r = new Random(42);
    expect(draws(3, () => r.int(0, MAX))).toEqual([
      3726296316377808, 35886769053350, 5855434548482126,
    ]);
  });

  it('normal()', () => {
    const r = new Random(42);
    expect(draws(6, () => r.normal())).toEqual([
      1.0873020675225118, 1.3373747636261168, 0.7409935464462171, 0.5294255135865079,
      0.42664902821655437, -0.46545467525853274,
    ]);
  });

  it('shuffle()', () => {
    const r = new Random(42);
    expect(r.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])).toEqual([1, 0, 9, 6, 2, 5, 3, 7, 8, 4]);
  });
});

describe('construction and seeds', () => {
  it('exposes the seed it was given', () => {
    expect(new Random(7).seed).toBe(7);
    expect(new Random('run-1').seed).toBe('run-1');
  });

  it('without a seed, picks a fresh safe-integer seed that replays the run', () => {
    const a = new Random();
    const b = new Random();
    expect(Number.isSafeInteger(a.seed)).toBe(true);
    expect(a.seed).toBeGreaterThanOrEqual(0);
    expect(a.seed).not.toBe(b.seed);
    const replay = new Random(a.seed);
    expect(draws(10, replay.next)).toEqual(draws(10, a.next));
  });

  it('is deterministic for a given seed', () => {
    expect(draws(100, new Random('x').next)).toEqual(draws(100, new Random('x').next));
    expect(draws(10, new Random(1).next)).not.toEqual(draws(10, new Random(2).next));
  });

  it.each([
    [-1, '`-1`'],
    [1.5, '`1.5`'],
    [Number.NaN, '`NaN`'],
    [Number.POSITIVE_INFINITY, '`Infinity`'],
    [2 ** 53, '`9007199254740992`'],
    [-0.5, '`-0.5`'],
  ])('rejects the number seed %s with a RangeError', (seed, shown) => {
    expect(() => new Random(seed)).toThrow(RangeError);
    expect(() => new Random(seed)).toThrow(
      `Expected \`seed\` to be a non-negative safe integer or a string, got ${shown}`,
    );
  });

  it.each([
    [null, '`null`'],
    [10n, '`10n`'],
    [{}, '`{}`'],
    [[1], '`[1]`'],
  ])('rejects the seed %s with a TypeError', (seed, shown) => {
    const make = () => new Random(seed as unknown as number);
    expect(make).toThrow(TypeError);
    expect(make).toThrow(
      `Expected \`seed\` to be a non-negative safe integer or a string, got ${shown}`,
    );
  });
});

describe('next() and uint32()', () => {
  it('next() builds 53 bits from two outputs: ((a >>> 5) * 2^26 + (b >>> 6)) / 2^53', () => {
    const raw = new Random(9);
    const r = new Random(9);
    for (let i = 0; i < 1000; i++) {
      const a = raw.uint32();
      const b = raw.uint32();
      expect(r.next()).toBe(((a >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992);
    }
  });

  it('next and uint32 are bound: they work detached, e.g. in place of Math.random', () => {
    const r = new Random(5);
    const same = new Random(5);
    const { next, uint32 } = r;
    const random: () => number = next;
    expect([random(), uint32(), random()]).toEqual([same.next(), same.uint32(), same.next()]);
    expect(draws(3, () => 0).map(next)).toEqual(draws(3, same.next));
  });

  it('next() is always in [0, 1) (any seed)', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (seed) => {
        const r = new Random(seed);
        for (let i = 0; i < 200; i++) {
          const x = r.next();
          if (!(x >= 0 && x < 1)) return false;
        }
        return true;
      }),
      fcOptions,
    );
  });

  it('next() reaches both ends of [0, 1): exactly 0 and 1 - 2^-53', () => {
    // Output = rotl(s1 * 5, 7) * 9 and the step leaves s1 unchanged when s0 = s2 = 0,
    // so s1 alone picks both 32-bit outputs of next(). 2199679431 maps to 2^32 - 1.
    const ones = at([0, 2199679431, 0, 1]);
    expect([ones.uint32(), ones.uint32()]).toEqual([2 ** 32 - 1, 2 ** 32 - 1]);
    expect(at([0, 2199679431, 0, 1]).next()).toBe(1 - 2 ** -53);
    expect(at([0, 0, 0, 1]).next()).toBe(0);
  });

  it('has mean 1/2 and variance 1/12 and uses all 53 bits (seed 1, 100k draws)', () => {
    const r = new Random(1);
    const xs = draws(100_000, r.next);
    const { mean, sd } = meanSd(xs);
    expect(mean).toBeCloseTo(0.5, 2);
    expect(sd ** 2).toBeCloseTo(1 / 12, 3);
    // The lowest of the 53 bits is a fair coin too.
    const odd = xs.filter((v) => (v * 2 ** 53) % 2 === 1).length;
    expect(Math.abs(odd / xs.length - 0.5)).toBeLessThan(0.01);
    expect(xs.every((v) => Number.isInteger(v * 2 ** 53))).toBe(true);
  });
});

describe('int(min, max)', () => {
  it('stays within [min, max] for any valid bounds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -MAX, max: MAX }),
        fc.integer({ min: -MAX, max: MAX }),
        fc.maxSafeNat(),
        (a, b, seed) => {
          let min = Math.min(a, b);
          const max = Math.max(a, b);
          if (max - min > MAX) min = max - MAX;
          const r = new Random(seed);
          for (let i = 0; i < 20; i++) {
            const x = r.int(min, max);
            if (!Number.isSafeInteger(x) || x < min || x > max) return false;
          }
          return true;
        },
      ),
      fcOptions,
    );
  });

  it('int(1, 6) is uniform (seed 2024, 60k draws)', () => {
    const r = new Random(2024);
    const counts = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 60_000; i++) {
      const face = r.int(1, 6);
      counts[face - 1] = (counts[face - 1] ?? 0) + 1;
    }
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(400);
    expect(chiSquare(counts)).toBeLessThan(20.5); // df = 5, p = 0.001
  });

  it('is unbiased where plain modulo would not be (range 3 * 2^30, one output per draw)', () => {
    // 2^32 mod (3 * 2^30) = 2^30: plain `x % n` would give [0, 2^30) twice the weight.
    const r = new Random(11);
    const n = 3 * 2 ** 30;
    let low = 0;
    for (let i = 0; i < 60_000; i++) if (r.int(0, n - 1) < 2 ** 30) low++;
    expect(low / 60_000).toBeCloseTo(1 / 3, 1);
    expect(Math.abs(low / 60_000 - 1 / 3)).toBeLessThan(0.01);
  });

  it('is unbiased where plain modulo would not be (range 3 * 2^51, two outputs per draw)', () => {
    // 2^53 mod (3 * 2^51) = 2^51.
    const r = new Random(12);
    const n = 3 * 2 ** 51;
    let low = 0;
    for (let i = 0; i < 60_000; i++) if (r.int(0, n - 1) < 2 ** 51) low++;
    expect(Math.abs(low / 60_000 - 1 / 3)).toBeLessThan(0.01);
  });

  it('covers big ranges: every third of [0, 2^53 - 1] and the sign of [-MAX, 0]', () => {
    const r = new Random(13);
    const thirds = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) {
      const k = Math.floor(r.int(0, MAX) / (2 ** 53 / 3));
      thirds[k] = (thirds[k] ?? 0) + 1;
    }
    expect(chiSquare(thirds)).toBeLessThan(13.8); // df = 2, p = 0.001
    const negatives = draws(1000, () => r.int(-MAX, 0));
    expect(negatives.every((x) => x <= 0 && x >= -MAX && Number.isSafeInteger(x))).toBe(true);
    expect(r.int(MAX, MAX)).toBe(MAX);
    expect(r.int(-MAX, -MAX)).toBe(-MAX);
    const odd = draws(10_000, () => r.int(0, 2 ** 40)).filter((x) => x % 2 === 1).length;
    expect(Math.abs(odd / 10_000 - 0.5)).toBeLessThan(0.03);
  });

  it('uses one output for ranges up to 2^32 and 21 + 32 bits of two outputs beyond', () => {
    const r = new Random(3);
    const raw = new Random(3);
    expect(r.int(0, 2 ** 32 - 1)).toBe(raw.uint32());
    expect(r.int(10, 10 + 2 ** 16 - 1)).toBe(10 + (raw.uint32() % 2 ** 16));
    const hi = raw.uint32() >>> 11;
    expect(r.int(0, 2 ** 53 - 1)).toBe(hi * 2 ** 32 + raw.uint32());
    expect(r.getState()).toEqual(raw.getState());
  });

  it('int(x, x) returns x without consuming output', () => {
    const r = new Random(4);
    const before = r.getState();
    expect(r.int(5, 5)).toBe(5);
    expect(r.int(-3, -3)).toBe(-3);
    expect(r.getState()).toEqual(before);
  });

  it.each([
    [[1.5, 2], RangeError, 'Expected `min` to be a safe integer, got `1.5`'],
    [[0, 2 ** 53], RangeError, 'Expected `max` to be a safe integer, got `9007199254740992`'],
    [[Number.NaN, 1], RangeError, 'Expected `min` to be a safe integer, got `NaN`'],
    [
      [0, Number.POSITIVE_INFINITY],
      RangeError,
      'Expected `max` to be a safe integer, got `Infinity`',
    ],
    [['1', 2], TypeError, 'Expected `min` to be a safe integer, got `"1"`'],
    [[0, undefined], TypeError, 'Expected `max` to be a safe integer, got `undefined`'],
    [[0, 10n], TypeError, 'Expected `max` to be a safe integer, got `10n`'],
    [
      [6, 1],
      RangeError,
      'Expected `min` to be less than or equal to `max`, got min `6` and max `1`',
    ],
    [
      [-MAX, 1],
      RangeError,
      'Expected `max - min` to be at most 9007199254740991, got min `-9007199254740991` and max `1`',
    ],
  ] as const)('int(%o) throws %o', (args, ErrorClass, message) => {
    const r = new Random(1);
    const before = r.getState();
    const call = () => r.int(...(args as unknown as [number, number]));
    expect(call).toThrow(ErrorClass);
    expect(call).toThrow(message);
    try {
      call();
    } catch (error) {
      expect((error as Error).message).toBe(message);
    }
    expect(r.getState()).toEqual(before);
  });
});

describe('float(min, max)', () => {
  it('defaults to [0, 1) and equals next()', () => {
    const a = new Random(6);
    const b = new Random(6);
    expect(draws(10, () => a.float())).toEqual(draws(10, b.next));
  });

  it('stays within [min, max) for any finite bounds', () => {
    fc.assert(
      fc.property(
        fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e300, max: 1e300 }),
        fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e300, max: 1e300 }),
        fc.maxSafeNat(),
        (a, b, seed) => {
          const min = Math.min(a, b);
          const max = Math.max(a, b);
          const r = new Random(seed);
          for (let i = 0; i < 20; i++) {
            const x = r.float(min, max);
            if (min === max ? x !== min : !(x >= min && x < max)) return false;
          }
          return true;
        },
      ),
      fcOptions,
    );
  });

  it('redraws when rounding lands on max', () => {
    // With a span of one ulp, about half the raw results round up to max.
    const r = new Random(8);
    const max = 1 + Number.EPSILON;
    expect(draws(1000, () => r.float(1, max)).every((x) => x === 1)).toBe(true);
  });

  it('scales: float(-10, 30) has mean 10 (seed 21, 50k draws)', () => {
    const r = new Random(21);
    const xs = draws(50_000, () => r.float(-10, 30));
    expect(Math.abs(meanSd(xs).mean - 10)).toBeLessThan(0.2);
    expect(Math.abs(meanSd(xs).sd - 40 / Math.sqrt(12))).toBeLessThan(0.2);
  });

  it('float(x, x) returns x without consuming output', () => {
    const r = new Random(4);
    const before = r.getState();
    expect(r.float(2.5, 2.5)).toBe(2.5);
    expect(r.getState()).toEqual(before);
  });

  it.each([
    [
      [1, 0],
      RangeError,
      'Expected `min` to be less than or equal to `max`, got min `1` and max `0`',
    ],
    [[Number.NaN, 1], RangeError, 'Expected `min` to be a finite number, got `NaN`'],
    [
      [0, Number.POSITIVE_INFINITY],
      RangeError,
      'Expected `max` to be a finite number, got `Infinity`',
    ],
    [['0', 1], TypeError, 'Expected `min` to be a finite number, got `"0"`'],
    [
      [-Number.MAX_VALUE, Number.MAX_VALUE],
      RangeError,
      'Expected `max - min` to be finite, got min `-1.7976931348623157e+308` and max `1.7976931348623157e+308`',
    ],
  ] as const)('float(%o) throws %o', (args, ErrorClass, message) => {
    const r = new Random(1);
    const call = () => r.float(...(args as unknown as [number, number]));
    expect(call).toThrow(ErrorClass);
    expect(call).toThrow(message);
  });
});

describe('normal(mean, sd)', () => {
  it('has mean 0, sd 1 and normal tails (seed 7, 100k draws)', () => {
    const r = new Random(7);
    const xs = draws(100_000, () => r.normal());
    const { mean, sd } = meanSd(xs);
    expect(Math.abs(mean)).toBeLessThan(0.015);
    expect(Math.abs(sd - 1)).toBeLessThan(0.015);
    const within1 = xs.filter((x) => Math.abs(x) < 1).length / xs.length;
    const within2 = xs.filter((x) => Math.abs(x) < 2).length / xs.length;
    expect(Math.abs(within1 - 0.6827)).toBeLessThan(0.01);
    expect(Math.abs(within2 - 0.9545)).toBeLessThan(0.005);
    const skew = xs.reduce((a, x) => a + ((x - mean) / sd) ** 3, 0) / xs.length;
    const kurtosis = xs.reduce((a, x) => a + ((x - mean) / sd) ** 4, 0) / xs.length;
    expect(Math.abs(skew)).toBeLessThan(0.05);
    expect(Math.abs(kurtosis - 3)).toBeLessThan(0.1);
  });

  it('scales by mean and sd, including the cached spare', () => {
    const r = new Random(17);
    const xs = draws(20_000, () => r.normal(10, 2));
    const { mean, sd } = meanSd(xs);
    expect(Math.abs(mean - 10)).toBeLessThan(0.05);
    expect(Math.abs(sd - 2)).toBeLessThan(0.05);
    const a = new Random(17);
    const b = new Random(17);
    expect([a.normal(10, 2), a.normal(10, 2)]).toEqual([10 + 2 * b.normal(), 10 + 2 * b.normal()]);
    expect(new Random(1).normal(3, 0)).toBe(3);
  });

  it('caches the second deviate in the state, and a restored generator returns it', () => {
    const r = new Random(99);
    expect(r.getState().spare).toBeNull();
    r.normal();
    const state = r.getState();
    expect(typeof state.spare).toBe('number');
    const restored = Random.fromState(JSON.parse(JSON.stringify(state)));
    const expected = r.normal();
    expect(restored.normal()).toBe(expected);
    expect(r.getState().spare).toBeNull();
    expect(restored.getState()).toEqual(r.getState());
  });

  it.each([
    [[0, -1], RangeError, 'Expected `sd` to be non-negative, got `-1`'],
    [[Number.NaN], RangeError, 'Expected `mean` to be a finite number, got `NaN`'],
    [
      [0, Number.POSITIVE_INFINITY],
      RangeError,
      'Expected `sd` to be a finite number, got `Infinity`',
    ],
    [[0, '1'], TypeError, 'Expected `sd` to be a finite number, got `"1"`'],
  ] as const)('normal(%o) throws %o', (args, ErrorClass, message) => {
    const r = new Random(1);
    const call = () => r.normal(...(args as unknown as [number, number]));
    expect(call).toThrow(ErrorClass);
    expect(call).toThrow(message);
  });
});

describe('shuffle() and pick()', () => {
  it('shuffles in place, returns the same array and keeps the multiset', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 })), fc.maxSafeNat(), (items, seed) => {
        const array = [...items];
        const result = new Random(seed).shuffle(array);
        expect(result).toBe(array);
        expect([...result].sort()).toEqual([...items].sort());
      }),
      fcOptions,
    );
  });

  it('puts each element in each position uniformly (seed 31, 30k shuffles of 10)', () => {
    const r = new Random(31);
    const counts = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
    for (let t = 0; t < 30_000; t++) {
      const a = r.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      a.forEach((value, position) => {
        const row = counts[value]!;
        row[position] = (row[position] ?? 0) + 1;
      });
    }
    for (const row of counts) {
      for (const c of row) expect(Math.abs(c - 3000)).toBeLessThan(300);
      expect(chiSquare(row)).toBeLessThan(27.9); // df = 9, p = 0.001
    }
  });

  it('makes all 6 permutations of 3 equally likely (seed 32, 60k shuffles)', () => {
    const r = new Random(32);
    const counts = new Map<string, number>();
    for (let t = 0; t < 60_000; t++) {
      const key = r.shuffle(['a', 'b', 'c']).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    expect(chiSquare([...counts.values()])).toBeLessThan(20.5); // df = 5, p = 0.001
  });

  it('does not draw for arrays of length 0 or 1', () => {
    const r = new Random(4);
    const before = r.getState();
    expect(r.shuffle([])).toEqual([]);
    expect(r.shuffle(['only'])).toEqual(['only']);
    expect(r.pick(['only'])).toBe('only');
    expect(r.getState()).toEqual(before);
  });

  it('pick() is uniform and matches int(0, length - 1)', () => {
    const r = new Random(33);
    const items = ['a', 'b', 'c', 'd', 'e'] as const;
    const counts = new Map<string, number>();
    for (let i = 0; i < 50_000; i++) {
      const x = r.pick(items);
      counts.set(x, (counts.get(x) ?? 0) + 1);
    }
    expect(chiSquare([...counts.values()])).toBeLessThan(18.5); // df = 4, p = 0.001
    const a = new Random(34);
    const b = new Random(34);
    expect(draws(50, () => a.pick(items))).toEqual(draws(50, () => items[b.int(0, 4)]));
  });

  it('rejects an empty array and non-arrays', () => {
    const r = new Random(1);
    expect(() => r.pick([])).toThrow(RangeError);
    expect(() => r.pick([])).toThrow('Cannot pick from an empty array');
    expect(() => r.pick('abc' as unknown as string[])).toThrow(TypeError);
    expect(() => r.pick('abc' as unknown as string[])).toThrow(
      'Expected `array` to be an array or a typed array, got `"abc"`',
    );
    expect(() => r.shuffle(null as unknown as number[])).toThrow(
      'Expected `array` to be an array or a typed array, got `null`',
    );
  });
});

type Op = 'next' | 'uint32' | 'int' | 'bigInt' | 'float' | 'normal' | 'shuffle' | 'pick';
const opArb = fc.constantFrom<Op>(
  'next',
  'uint32',
  'int',
  'bigInt',
  'float',
  'normal',
  'normal',
  'shuffle',
  'pick',
);

function apply(r: Random, op: Op): unknown {
  switch (op) {
    case 'next':
      return r.next();
    case 'uint32':
      return r.uint32();
    case 'int':
      return r.int(-3, 1000);
    case 'bigInt':
      return r.int(-(2 ** 50), 2 ** 52);
    case 'float':
      return r.float(-1, 1);
    case 'normal':
      return r.normal(1, 3);
    case 'shuffle':
      return r.shuffle([1, 2, 3, 4, 5, 6, 7]);
    case 'pick':
      return r.pick(['x', 'y', 'z']);
  }
}

const seedArb = fc.oneof(fc.maxSafeNat(), fc.string({ unit: 'binary', maxLength: 20 }));

describe('getState() / fromState() / setState()', () => {
  it('a generator restored from JSON continues exactly like the uninterrupted one', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.array(opArb, { maxLength: 60 }),
        fc.array(opArb, { minLength: 1, maxLength: 60 }),
        (seed, before, after) => {
          const uninterrupted = new Random(seed);
          for (const op of before) apply(uninterrupted, op);

          const interrupted = new Random(seed);
          for (const op of before) apply(interrupted, op);
          const saved: unknown = JSON.parse(JSON.stringify(interrupted.getState()));
          const resumed = Random.fromState(saved);
          expect(resumed.seed).toBe(seed);

          // setState() on an unrelated generator with a pending spare works too.
          const reused = new Random(12345);
          reused.normal();
          reused.setState(saved as RandomState);

          const expected = after.map((op) => apply(uninterrupted, op));
          expect(after.map((op) => apply(resumed, op))).toEqual(expected);
          expect(after.map((op) => apply(reused, op))).toEqual(expected);
          expect(resumed.getState()).toEqual(uninterrupted.getState());
        },
      ),
      fcOptions,
    );
  });

  it('round-trips the state exactly, spare included', () => {
    fc.assert(
      fc.property(seedArb, fc.array(opArb, { maxLength: 30 }), (seed, ops) => {
        const r = new Random(seed);
        for (const op of ops) apply(r, op);
        const state = r.getState();
        expect(Random.fromState(JSON.parse(JSON.stringify(state))).getState()).toEqual(state);
      }),
      fcOptions,
    );
  });

  it('has the documented plain shape', () => {
    const r = new Random('shape');
    r.normal();
    const state = r.getState();
    expect(Object.keys(state).sort()).toEqual(['algorithm', 's', 'seed', 'spare']);
    expect(state.algorithm).toBe('xoshiro128**');
    expect(state.seed).toBe('shape');
    expect(state.s).toHaveLength(4);
    for (const w of state.s) expect(Number.isInteger(w) && w >= 0 && w < 2 ** 32).toBe(true);
    expect(Number.isFinite(state.spare)).toBe(true);
    expect(Object.getPrototypeOf(state)).toBe(Object.prototype);
    expect(Array.isArray(state.s)).toBe(true);
  });

  it('returns a snapshot, not a live view', () => {
    const r = new Random(1);
    const state = r.getState();
    const copy = structuredClone(state);
    r.next();
    expect(state).toEqual(copy);
    state.s[0] = 12;
    expect(r.getState().s[0]).not.toBe(12);
    const restored = Random.fromState(copy);
    copy.s[0] = 99;
    expect(restored.getState().s[0]).not.toBe(99);
  });

  it('ignores unknown extra fields', () => {
    const state = { ...new Random(3).getState(), note: 'extra' };
    expect(Random.fromState(state).next()).toBe(new Random(3).next());
  });

  it('clone() continues identically and independently', () => {
    const r = new Random('clone');
    r.normal();
    const c = r.clone();
    expect(c.seed).toBe('clone');
    expect(c.getState()).toEqual(r.getState());
    expect(draws(5, () => c.normal())).toEqual(draws(5, () => r.normal()));
    c.next();
    expect(c.getState()).not.toEqual(r.getState());
  });

  it('jump() gives a different stream and drops the cached spare', () => {
    const r = new Random(50);
    r.normal();
    const w = r.clone();
    w.jump();
    expect(w.getState().spare).toBeNull();
    expect(draws(5, w.uint32)).not.toEqual(draws(5, r.uint32));
  });

  const valid = (): Record<string, unknown> => ({
    algorithm: 'xoshiro128**',
    seed: 1,
    s: [1, 2, 3, 4],
    spare: null,
  });
  const sParse = 'Expected `state.s` to be an array of 4 uint32 integers, got';

  it.each<[string, unknown, string]>([
    ['null', null, 'Expected `state` to be a plain object, got `null`'],
    ['undefined', undefined, 'Expected `state` to be a plain object, got `undefined`'],
    ['a string', 'xoshiro', 'Expected `state` to be a plain object, got `"xoshiro"`'],
    ['an array', [1, 2, 3, 4], 'Expected `state` to be a plain object, got `[1,2,3,4]`'],
    [
      'another algorithm',
      { ...valid(), algorithm: 'mt19937' },
      'Expected `state.algorithm` to be "xoshiro128**", got `"mt19937"`',
    ],
    [
      'no algorithm',
      { ...valid(), algorithm: undefined },
      'Expected `state.algorithm` to be "xoshiro128**", got `undefined`',
    ],
    [
      'a negative seed',
      { ...valid(), seed: -1 },
      'Expected `state.seed` to be a non-negative safe integer or a string, got `-1`',
    ],
    [
      'a fractional seed',
      { ...valid(), seed: 1.5 },
      'Expected `state.seed` to be a non-negative safe integer or a string, got `1.5`',
    ],
    [
      'no seed',
      { algorithm: 'xoshiro128**', s: [1, 2, 3, 4], spare: null },
      'Expected `state.seed` to be a non-negative safe integer or a string, got `undefined`',
    ],
    ['s too short', { ...valid(), s: [1, 2] }, `${sParse} \`[1,2]\``],
    ['s too long', { ...valid(), s: [1, 2, 3, 4, 5] }, `${sParse} \`[1,2,3,4,5]\``],
    ['s negative', { ...valid(), s: [1, 2, 3, -4] }, `${sParse} \`[1,2,3,-4]\``],
    ['s too big', { ...valid(), s: [1, 2, 3, 2 ** 32] }, `${sParse} \`[1,2,3,4294967296]\``],
    ['s fractional', { ...valid(), s: [1, 2, 3, 1.5] }, `${sParse} \`[1,2,3,1.5]\``],
    ['s NaN', { ...valid(), s: [1, 2, 3, Number.NaN] }, `${sParse} \`[1,2,3,NaN]\``],
    ['s with a string', { ...valid(), s: [1, 2, 3, '4'] }, `${sParse} \`[1,2,3,"4"]\``],
    ['s as a string', { ...valid(), s: '1,2,3,4' }, `${sParse} \`"1,2,3,4"\``],
    // biome-ignore lint/suspicious/noSparseArray: a hole is exactly what is tested
    ['s sparse', { ...valid(), s: [1, , 3, 4] }, `${sParse} \`[1,,3,4]\``],
    ['s missing', { ...valid(), s: undefined }, `${sParse} \`undefined\``],
    [
      's all zero',
      { ...valid(), s: [0, 0, 0, 0] },
      'Expected `state.s` not to be all zero (xoshiro128** never reaches that state), got `[0,0,0,0]`',
    ],
    [
      'spare NaN',
      { ...valid(), spare: Number.NaN },
      'Expected `state.spare` to be null or a finite number, got `NaN`',
    ],
    [
      'spare Infinity',
      { ...valid(), spare: Number.NEGATIVE_INFINITY },
      'Expected `state.spare` to be null or a finite number, got `-Infinity`',
    ],
    [
      'spare missing',
      { algorithm: 'xoshiro128**', seed: 1, s: [1, 2, 3, 4] },
      'Expected `state.spare` to be null or a finite number, got `undefined`',
    ],
    [
      'spare a string',
      { ...valid(), spare: '0.5' },
      'Expected `state.spare` to be null or a finite number, got `"0.5"`',
    ],
  ])('rejects %s with an exact TypeError', (_name, state, message) => {
    expect(() => Random.fromState(state)).toThrow(TypeError);
    let thrown: unknown;
    try {
      Random.fromState(state);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as TypeError).message).toBe(message);

    // setState validates the same way and leaves the generator untouched.
    const r = new Random(77);
    r.normal();
    const before = r.getState();
    expect(() => r.setState(state as RandomState)).toThrow(message);
    expect(r.getState()).toEqual(before);
  });

  it('accepts the boundary values of every field', () => {
    const r = Random.fromState({
      algorithm: 'xoshiro128**',
      seed: MAX,
      s: [0, 0, 0, 2 ** 32 - 1],
      spare: -1e308,
    });
    expect(r.seed).toBe(MAX);
    expect(r.getState().s).toEqual([0, 0, 0, 2 ** 32 - 1]);
    expect(r.normal(0, 1)).toBe(-1e308);
    expect(Random.fromState({ ...r.getState(), seed: '' }).seed).toBe('');
  });
});
