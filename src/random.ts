/**
 * A fast, seeded pseudo-random number generator whose complete state can be
 * saved in a checkpoint and restored, so that a resumed computation draws
 * exactly the same numbers as an uninterrupted run.
 *
 * Algorithm: xoshiro128** 1.1 by David Blackman and Sebastiano Vigna
 * (https://prng.di.unimi.it/xoshiro128starstar.c): 128 bits of state, period
 * 2^128 - 1, 32-bit outputs, implemented with 32-bit integer operations
 * (`Math.imul`, `>>>`), which V8 compiles to plain machine instructions.
 *
 * @module
 *
 * Over 400 lines: the generator, its distributions and its validated state are one
 * class, whose state layout is part of the file format.
 */

import { createHash, randomBytes } from 'node:crypto';

/** Name of the algorithm, recorded in every {@link RandomState}. */
const ALGORITHM = 'xoshiro128**';

/**
 * The complete state of a {@link Random}: a plain, JSON-serializable object.
 *
 * `JSON.parse(JSON.stringify(random.getState()))` round-trips exactly (every
 * field is a string, a safe integer, a finite double or `null`), and
 * {@link Random.fromState} continues the sequence bit for bit.
 */
export interface RandomState {
  /** Always `'xoshiro128**'`; lets a future version refuse a foreign state. */
  algorithm: 'xoshiro128**';
  /**
   * The seed the generator was created from. Informational: the position in
   * the sequence is entirely in `s` and `spare`.
   */
  seed: number | string;
  /** The four 32-bit state words `s[0..3]` of xoshiro128**, as unsigned integers, not all zero. */
  s: [number, number, number, number];
  /**
   * The second standard-normal deviate of the last Marsaglia polar pair,
   * returned by the next {@link Random.normal} call; `null` when there is none.
   */
  spare: number | null;
}

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;
const MASK_64 = 0xffffffffffffffffn;

/** Jump polynomial equivalent to 2^64 calls of the generator (from the reference implementation). */
const JUMP = [0x8764000b, 0xf542d2d3, 0x6fa035c3, 0x77f2db5b] as const;
/** Jump polynomial equivalent to 2^96 calls of the generator (from the reference implementation). */
const LONG_JUMP = [0xb523952e, 0x0b6f099f, 0xccf5a0ef, 0x1c580662] as const;

/**
 * One step of splitmix64 (Steele, Lea & Flood; constants of the reference
 * https://prng.di.unimi.it/splitmix64.c): returns the output for counter `x`,
 * i.e. after the increment `x + 0x9e3779b97f4a7c15`. BigInt is fine here: it
 * only runs at construction.
 */
function splitmix64(x: bigint): bigint {
  let z = x & MASK_64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK_64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK_64;
  return z ^ (z >> 31n);
}

/**
 * Expands a 64-bit seed into the four state words, as Vigna recommends: the
 * first two outputs of splitmix64 started at `seed64`, low word first:
 * `s = [lo(o1), hi(o1), lo(o2), hi(o2)]`. The splitmix64 output function is a
 * bijection, so two consecutive outputs are never both zero and the state is
 * never all zero.
 */
function expandSeed(seed64: bigint): [number, number, number, number] {
  const GAMMA = 0x9e3779b97f4a7c15n;
  const o1 = splitmix64(seed64 + GAMMA);
  const o2 = splitmix64(seed64 + 2n * GAMMA);
  return [Number(o1 & 0xffffffffn), Number(o1 >> 32n), Number(o2 & 0xffffffffn), Number(o2 >> 32n)];
}

/**
 * Maps a seed to the 64-bit integer fed to {@link expandSeed}:
 * a number is used as is; a string is encoded as UTF-8, hashed with SHA-256,
 * and the first 8 bytes of the digest are read as a big-endian unsigned integer.
 */
function seedTo64(seed: number | string): bigint {
  if (typeof seed === 'number') return BigInt(seed);
  return createHash('sha256').update(seed, 'utf8').digest().readBigUInt64BE(0);
}

/** Formats a value for an error message, compactly and without throwing. */
function show(value: unknown, depth = 0): string {
  const text = showInner(value, depth);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

function showInner(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'symbol':
      return value.toString();
    case 'function':
      return value.name ? `[Function ${value.name}]` : '[Function]';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        if (depth >= 2) return '[…]';
        const items = value.slice(0, 10).map((item: unknown) => showInner(item, depth + 1));
        if (value.length > 10) items.push('…');
        return `[${items.join(',')}]`;
      }
      if (depth >= 2) return '{…}';
      try {
        const entries = Object.entries(value);
        const items = entries
          .slice(0, 10)
          .map(([key, item]) => `${JSON.stringify(key)}:${showInner(item, depth + 1)}`);
        if (entries.length > 10) items.push('…');
        return `{${items.join(',')}}`;
      } catch {
        return Object.prototype.toString.call(value);
      }
    }
    default:
      return String(value);
  }
}

function isUint32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < TWO_POW_32;
}

function isValidSeed(value: unknown): value is number | string {
  return typeof value === 'string' || (Number.isSafeInteger(value) && (value as number) >= 0);
}

/** Validates an untrusted state; returns it normalized or throws a TypeError naming the bad field. */
function parseState(state: unknown): RandomState {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw new TypeError(`Expected \`state\` to be a plain object, got \`${show(state)}\``);
  }
  const { algorithm, seed, s, spare } = state as Record<string, unknown>;
  if (algorithm !== ALGORITHM) {
    throw new TypeError(
      `Expected \`state.algorithm\` to be "${ALGORITHM}", got \`${show(algorithm)}\``,
    );
  }
  if (!isValidSeed(seed)) {
    throw new TypeError(
      `Expected \`state.seed\` to be a non-negative safe integer or a string, got \`${show(seed)}\``,
    );
  }
  // Read each element once, by index (`every` would skip the holes of a sparse array).
  const words = Array.isArray(s) && s.length === 4 ? [s[0], s[1], s[2], s[3]] : [];
  const [w0, w1, w2, w3] = words;
  if (!(isUint32(w0) && isUint32(w1) && isUint32(w2) && isUint32(w3))) {
    throw new TypeError(
      `Expected \`state.s\` to be an array of 4 uint32 integers, got \`${show(s)}\``,
    );
  }
  if (w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0) {
    throw new TypeError(
      `Expected \`state.s\` not to be all zero (xoshiro128** never reaches that state), got \`${show(s)}\``,
    );
  }
  if (spare !== null && !(typeof spare === 'number' && Number.isFinite(spare))) {
    throw new TypeError(
      `Expected \`state.spare\` to be null or a finite number, got \`${show(spare)}\``,
    );
  }
  return {
    algorithm: ALGORITHM,
    seed,
    s: [w0, w1, w2, w3],
    spare,
  };
}

function checkSafeInteger(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') {
    throw new TypeError(`Expected \`${name}\` to be a safe integer, got \`${show(value)}\``);
  }
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`Expected \`${name}\` to be a safe integer, got \`${show(value)}\``);
  }
}

function checkFinite(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') {
    throw new TypeError(`Expected \`${name}\` to be a finite number, got \`${show(value)}\``);
  }
  if (!Number.isFinite(value)) {
    throw new RangeError(`Expected \`${name}\` to be a finite number, got \`${show(value)}\``);
  }
}

/** An array or a typed array: what shuffle() and pick() accept. */
export type Indexable<T> = { length: number; [index: number]: T };

function checkArray(value: unknown): void {
  if (!Array.isArray(value) && !(ArrayBuffer.isView(value) && !(value instanceof DataView))) {
    throw new TypeError(
      `Expected \`array\` to be an array or a typed array, got \`${show(value)}\``,
    );
  }
}

/**
 * A seeded xoshiro128** generator whose full state can be checkpointed with
 * {@link Random.getState} and restored with {@link Random.fromState}.
 *
 * ```ts
 * const rng = saved ? Random.fromState(saved.rng) : new Random(42);
 * const x = rng.next();          // [0, 1), 53 bits
 * const die = rng.int(1, 6);     // 1..6 inclusive, unbiased
 * checkpoint.rng = rng.getState(); // plain JSON
 * ```
 *
 * **Reproducibility contract.** For a given seed, the sequences returned by
 * every method are part of the public API and change only in a major version.
 * `uint32`, `next`, `int`, `float`, `shuffle` and `pick` use only exact
 * integer and IEEE-754 arithmetic, so they are identical on every JavaScript
 * engine. `normal` also calls `Math.log`, which V8 (Node.js) computes with the
 * same portable fdlibm code on every platform, but which ECMAScript does not
 * pin down to the last bit across engines.
 *
 * **Draw counts.** `uint32` consumes one 32-bit output; `next` two; `float`
 * two per attempt; `int` and `pick` one per attempt for ranges up to 2^32 and
 * two beyond (rejection sampling may retry); `normal` four per polar attempt
 * every other call; `shuffle` one `int` per element but the first.
 *
 * Not cryptographically secure: use `node:crypto` for secrets.
 */
export class Random {
  // The state lives in four plain number fields: measured faster in V8 than
  // an Int32Array/Uint32Array or `#private` fields. Stored as int32 values.
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** Cached standard-normal deviate; NaN (not null) when absent, so the field stays a double. */
  private spareNormal = Number.NaN;
  private seedValue: number | string;

  /**
   * Creates a generator.
   *
   * @param seed A non-negative safe integer, or any string. Both are turned
   * into a 64-bit integer (a number as is; a string as the first 8 bytes,
   * big-endian, of the SHA-256 of its UTF-8 encoding), and that integer is
   * expanded into the 128-bit state by the first two outputs of splitmix64
   * (`s = [lo(o1), hi(o1), lo(o2), hi(o2)]`), so the state is never all zero.
   * Omitted: a fresh 53-bit seed from `node:crypto`, readable as
   * {@link Random.seed} so the run can be replayed with `new Random(seed)`.
   * @throws {RangeError} if `seed` is a number but not a non-negative safe integer.
   * @throws {TypeError} if `seed` is neither a number, a string nor `undefined`.
   */
  constructor(seed?: number | string) {
    if (seed === undefined) {
      seed = Number(randomBytes(8).readBigUInt64BE(0) >> 11n);
    } else if (typeof seed === 'number') {
      if (!Number.isSafeInteger(seed) || seed < 0) {
        throw new RangeError(
          `Expected \`seed\` to be a non-negative safe integer or a string, got \`${show(seed)}\``,
        );
      }
    } else if (typeof seed !== 'string') {
      throw new TypeError(
        `Expected \`seed\` to be a non-negative safe integer or a string, got \`${show(seed)}\``,
      );
    }
    this.seedValue = seed;
    const [a, b, c, d] = expandSeed(seedTo64(seed));
    this.s0 = a | 0;
    this.s1 = b | 0;
    this.s2 = c | 0;
    this.s3 = d | 0;
  }

  /**
   * Restores a generator from a state returned by {@link Random.getState},
   * typically after a JSON round trip. The new generator continues the
   * sequence exactly where the saved one was.
   *
   * @param state An untrusted value; validated thoroughly.
   * @throws {TypeError} naming the offending field and its value, e.g.
   * ``Expected `state.s` to be an array of 4 uint32 integers, got `[1,2]` ``.
   */
  static fromState(state: unknown): Random {
    const valid = parseState(state);
    const random = new Random(valid.seed);
    random.load(valid);
    return random;
  }

  /**
   * The seed this generator was created from (or that of the last state given
   * to {@link Random.setState}). `new Random(rng.seed)` replays the sequence
   * from its start.
   */
  get seed(): number | string {
    return this.seedValue;
  }

  /**
   * The next raw 32-bit output of xoshiro128**, an integer in [0, 2^32).
   * A bound arrow function: `const u = rng.uint32` works.
   */
  readonly uint32 = (): number => {
    const s1 = this.s1;
    const r = Math.imul(s1, 5);
    const result = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const s2 = this.s2 ^ this.s0;
    const s3 = this.s3 ^ s1;
    this.s1 = s1 ^ s2;
    this.s0 ^= s3;
    this.s2 = s2 ^ t;
    this.s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  };

  /**
   * A uniform double in [0, 1) with 53 bits of precision, built from two
   * 32-bit outputs `a`, `b` as `((a >>> 5) * 2^26 + (b >>> 6)) / 2^53`, so
   * every multiple of 2^-53 in [0, 1) is equally likely.
   *
   * A bound arrow function: `const f = rng.next` works, and it can stand in
   * for `Math.random`.
   */
  readonly next = (): number => {
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;

    let r = Math.imul(s1, 5);
    const a = Math.imul((r << 7) | (r >>> 25), 9) >>> 5;
    let t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);

    r = Math.imul(s1, 5);
    const b = Math.imul((r << 7) | (r >>> 25), 9) >>> 6;
    t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);

    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    return (a * 67108864 + b) / TWO_POW_53;
  };

  /**
   * An integer uniformly distributed in [`min`, `max`], both inclusive, with
   * no modulo bias (rejection sampling). Ranges up to 2^32 values use one
   * 32-bit output per attempt; larger ranges (up to 2^53 values) combine two.
   * `int(x, x)` returns `x` without consuming any output.
   *
   * @param min Lowest possible result, a safe integer.
   * @param max Highest possible result, a safe integer `>= min` with
   * `max - min <= Number.MAX_SAFE_INTEGER`.
   * @throws {TypeError} if `min` or `max` is not a number.
   * @throws {RangeError} if either is not a safe integer, `min > max`, or the
   * range is wider than 2^53 values.
   */
  int(min: number, max: number): number {
    checkSafeInteger('min', min);
    checkSafeInteger('max', max);
    if (min > max) {
      throw new RangeError(
        `Expected \`min\` to be less than or equal to \`max\`, got min \`${show(min)}\` and max \`${show(max)}\``,
      );
    }
    const span = max - min;
    if (span > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(
        `Expected \`max - min\` to be at most ${Number.MAX_SAFE_INTEGER}, got min \`${show(min)}\` and max \`${show(max)}\``,
      );
    }
    if (span === 0) return min;
    return min + this.below(span + 1);
  }

  /**
   * A double uniformly distributed in [`min`, `max`), computed as
   * `min + (max - min) * next()` and redrawn in the (rare) case rounding
   * lands on `max`. `float(x, x)` returns `x` without consuming any output.
   *
   * @param min Lower bound (inclusive), a finite number. Default `0`.
   * @param max Upper bound (exclusive), a finite number `>= min`. Default `1`.
   * @throws {TypeError} if `min` or `max` is not a number.
   * @throws {RangeError} if either is not finite, `min > max`, or `max - min`
   * overflows.
   */
  float(min = 0, max = 1): number {
    checkFinite('min', min);
    checkFinite('max', max);
    if (min > max) {
      throw new RangeError(
        `Expected \`min\` to be less than or equal to \`max\`, got min \`${show(min)}\` and max \`${show(max)}\``,
      );
    }
    const span = max - min;
    if (!Number.isFinite(span)) {
      throw new RangeError(
        `Expected \`max - min\` to be finite, got min \`${show(min)}\` and max \`${show(max)}\``,
      );
    }
    if (span === 0) return min;
    let x: number;
    do {
      x = min + span * this.next();
    } while (x >= max);
    return x;
  }

  /**
   * A normally distributed double (Marsaglia polar method). Each polar
   * attempt yields two independent deviates: the second is cached and
   * returned (rescaled) by the next call. The cached value is part of
   * {@link Random.getState}, so a restored generator continues exactly.
   *
   * @param mean Mean of the distribution, a finite number. Default `0`.
   * @param sd Standard deviation, a finite number `>= 0`. Default `1`.
   * @throws {TypeError} if `mean` or `sd` is not a number.
   * @throws {RangeError} if either is not finite or `sd < 0`.
   */
  normal(mean = 0, sd = 1): number {
    checkFinite('mean', mean);
    checkFinite('sd', sd);
    if (sd < 0) {
      throw new RangeError(`Expected \`sd\` to be non-negative, got \`${show(sd)}\``);
    }
    const spare = this.spareNormal;
    if (!Number.isNaN(spare)) {
      this.spareNormal = Number.NaN;
      return mean + sd * spare;
    }
    let u: number;
    let v: number;
    let q: number;
    do {
      u = 2 * this.next() - 1;
      v = 2 * this.next() - 1;
      q = u * u + v * v;
    } while (q >= 1 || q === 0);
    const m = Math.sqrt((-2 * Math.log(q)) / q);
    this.spareNormal = v * m;
    return mean + sd * (u * m);
  }

  /**
   * Shuffles `array` in place (Fisher–Yates, from the last index down) with
   * every permutation equally likely, and returns the same array.
   *
   * @throws {TypeError} if `array` is not an array or a typed array.
   */
  shuffle<A extends Indexable<unknown>>(array: A): A {
    checkArray(array);
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /**
   * A uniformly chosen element of `array` (one `int(0, length - 1)` draw;
   * none for a one-element array).
   *
   * @throws {TypeError} if `array` is not an array or a typed array.
   * @throws {RangeError} if `array` is empty.
   */
  pick<T>(array: Readonly<Indexable<T>>): T {
    checkArray(array);
    const n = array.length;
    if (n === 0) throw new RangeError('Cannot pick from an empty array');
    return array[n === 1 ? 0 : this.below(n)] as T;
  }

  /**
   * Advances the generator by 2^64 outputs (xoshiro128** reference jump) and
   * drops any cached normal deviate. Use it to give parallel workers
   * non-overlapping streams: `const w = rng.clone(); w.jump();`.
   */
  jump(): void {
    this.jumpBy(JUMP);
  }

  /**
   * Advances the generator by 2^96 outputs (xoshiro128** reference long jump)
   * and drops any cached normal deviate: 2^32 starting points, each of which
   * {@link Random.jump} splits into 2^32 streams.
   */
  longJump(): void {
    this.jumpBy(LONG_JUMP);
  }

  /** An independent generator with the same seed and state: both produce the same sequence from here on. */
  clone(): Random {
    const copy = new Random(this.seedValue);
    copy.load(this.getState());
    return copy;
  }

  /**
   * The complete state as a fresh plain object: JSON-serializable, with no
   * reference to the generator (drawing more does not change it).
   */
  getState(): RandomState {
    const spare = this.spareNormal;
    return {
      algorithm: ALGORITHM,
      seed: this.seedValue,
      s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0],
      spare: Number.isNaN(spare) ? null : spare,
    };
  }

  /**
   * Replaces the whole state (including the seed and the cached normal
   * deviate) by `state`, validated exactly as by {@link Random.fromState}.
   * Nothing changes if validation fails.
   *
   * @throws {TypeError} naming the offending field and its value.
   */
  setState(state: RandomState): void {
    this.load(parseState(state));
  }

  /** Uniform integer in [0, n) for an integer 1 <= n <= 2^53, unbiased by rejection. */
  private below(n: number): number {
    if (n <= TWO_POW_32) {
      // Largest multiple of n that is <= 2^32: accept x below it.
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      let x = this.uint32();
      while (x >= limit) x = this.uint32();
      return x % n;
    }
    // 53 random bits: high 21 bits of the first output, then all 32 of the second.
    const limit = TWO_POW_53 - (TWO_POW_53 % n);
    let x: number;
    do {
      const hi = this.uint32() >>> 11;
      x = hi * TWO_POW_32 + this.uint32();
    } while (x >= limit);
    return x % n;
  }

  private jumpBy(poly: readonly [number, number, number, number]): void {
    let j0 = 0;
    let j1 = 0;
    let j2 = 0;
    let j3 = 0;
    for (const word of poly) {
      for (let b = 0; b < 32; b++) {
        if ((word >>> b) & 1) {
          j0 ^= this.s0;
          j1 ^= this.s1;
          j2 ^= this.s2;
          j3 ^= this.s3;
        }
        this.uint32();
      }
    }
    this.s0 = j0;
    this.s1 = j1;
    this.s2 = j2;
    this.s3 = j3;
    this.spareNormal = Number.NaN;
  }

  private load(state: RandomState): void {
    this.seedValue = state.seed;
    this.s0 = state.s[0] | 0;
    this.s1 = state.s[1] | 0;
    this.s2 = state.s[2] | 0;
    this.s3 = state.s[3] | 0;
    this.spareNormal = state.spare === null ? Number.NaN : state.spare;
  }
}
