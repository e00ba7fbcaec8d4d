// Type tests (#12.2): compiled, never run. `npm run typecheck` checks them against src/, and
// test/consumer-types.test.ts against the packed declarations in ESM and CommonJS consumer
// projects (it rewrites the '../../src/…' imports to the package's own names). A
// `@ts-expect-error` line fails the build when the error it expects goes away.
import { expectTypeOf } from 'expect-type';
import { Checkpoint, type Trackable } from '../../src/index.js';
import { s3Store } from '../../src/s3.js';

const options = { name: 'types', signals: false, log: false } as const;

/** The README's primes example, typed as it is written there. */
export function computePrimes(n = 10): number[] {
  const chp = new Checkpoint(options);
  const s = chp.restore({ primes: [2], candidate: 2 });
  expectTypeOf(s).toEqualTypeOf<{ primes: number[]; candidate: number }>();
  while (n > 0) {
    s.candidate += 1;
    if (s.primes.every((p) => s.candidate % p !== 0)) {
      s.primes.push(s.candidate);
      n -= 1;
    }
    chp.sync();
  }
  // @ts-expect-error: the inferred state keeps its types
  s.candidate = 'three';
  chp.save();
  return s.primes;
}

interface State {
  items: string[];
  mode: 'fast' | 'exact';
  done?: number;
}

export function declaredState(): State {
  const chp = new Checkpoint<State>(options);
  // The declared type wins over what `initial` alone would infer (never[], 'fast').
  const s = chp.restore({ items: [], mode: 'fast' });
  expectTypeOf(s).toEqualTypeOf<State>();
  s.items.push('a');
  s.mode = 'exact';
  // @ts-expect-error: a State needs `mode`
  chp.restore({ items: [] });
  // @ts-expect-error: `mode` is 'fast' or 'exact'
  chp.restore({ items: [], mode: 'slow' });
  chp.save({ items: ['b'], mode: 'exact' });
  // @ts-expect-error: save(state) takes a State too
  chp.save({ items: [1] });
  expectTypeOf(chp.sync({ items: [], mode: 'fast', done: 1 })).toEqualTypeOf<boolean>();
  // @ts-expect-error: and sync(state)
  chp.sync({ mode: 'fast' });
  return s;
}

export function destructured(): void {
  const chp = new Checkpoint(options);
  let { a, b } = chp.restore({ a: 1, b: [1n] });
  expectTypeOf(a).toEqualTypeOf<number>();
  expectTypeOf(b).toEqualTypeOf<bigint[]>();
  a += 1;
  b = [...b, 2n];
  chp.sync({ a, b });
}

export function otherStates(): void {
  const chp = new Checkpoint(options);
  expectTypeOf(chp.restore(new Map<string, number>())).toEqualTypeOf<Map<string, number>>();
  expectTypeOf(chp.restore([1, 2])).toEqualTypeOf<number[]>();
  // @ts-expect-error: the state is an object
  chp.restore(42);
  const weights = new Checkpoint<{ w: Float32Array }>(options).restore({
    w: new Float32Array(4),
  });
  expectTypeOf(weights.w).toEqualTypeOf<Float32Array>();
}

/** A helper generic over the state type: restore() returns that type. */
export function restoreWith<S extends object>(chp: Checkpoint<S>, initial: S): S {
  return chp.restore(initial);
}

export async function loopsAndSteps(files: string[], pages: AsyncIterable<number[]>) {
  const chp = new Checkpoint(options);
  chp.restore({ total: 0 });
  for (const i of chp.range(10)) expectTypeOf(i).toEqualTypeOf<number>();
  for (const file of chp.each(files)) expectTypeOf(file).toEqualTypeOf<string>();
  for await (const page of chp.each(pages)) expectTypeOf(page).toEqualTypeOf<number[]>();
  expectTypeOf(await chp.once('k', () => 'text')).toEqualTypeOf<string>();
  expectTypeOf(await chp.once('k', async () => ({ n: 1 }))).toEqualTypeOf<{ n: number }>();
}

export function tracked(): void {
  const sim = { state: { t: 0, particles: [0.5] } };
  const chp = new Checkpoint(options);
  // setState's parameter is the type getState returns: no `unknown` to cast.
  chp.track('sim', {
    getState: () => sim.state,
    setState: (saved) => {
      expectTypeOf(saved).toEqualTypeOf<{ t: number; particles: number[] }>();
      sim.state = saved;
    },
  });
  chp.track('random', chp.random);
  const generic: Trackable = { getState: () => 1, setState: () => {} };
  chp.track('any', generic);
  // @ts-expect-error: setState must accept what getState returns
  chp.track('bad', { getState: () => 1, setState: (s: string) => s.length });
}

export function stores(): void {
  const chp = new Checkpoint({ store: s3Store({ bucket: 'b', prefix: 'p' }), interval: '5m' });
  // @ts-expect-error: `interval` is milliseconds or a duration string
  new Checkpoint({ interval: true });
  chp.close();
}
