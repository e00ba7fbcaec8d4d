/**
 * Resumable loops (src/loops.ts) against a fake host: a Map of positions and a sync() that
 * records what a save would store (the positions, via loopPositions, and a copy of the state).
 * Also the Math.random routing of src/math-random.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  each,
  type LoopHost,
  type LoopProgress,
  loopPositions,
  range,
  restorePositions,
} from '../src/loops.js';
import { installMathRandom } from '../src/math-random.js';

interface FakeHost extends LoopHost {
  syncs: number;
  /** What each sync() would have saved: positions and the state. */
  saves: { positions: Map<string, number>; state: unknown }[];
  state: unknown;
}

function fakeHost(saved?: Map<string, number>, progress?: LoopHost['progress']): FakeHost {
  const host: FakeHost = {
    loops: new Map(),
    syncs: 0,
    saves: [],
    state: undefined,
    sync() {
      host.syncs++;
      host.saves.push({
        positions: new Map(loopPositions(host)),
        state: structuredClone(host.state),
      });
      return true;
    },
    progress,
  };
  if (saved !== undefined) restorePositions(host, saved);
  return host;
}

/** What a restarted process sees: the positions of the last save. */
const lastSave = (host: FakeHost): Map<string, number> =>
  host.saves.at(-1)?.positions ?? new Map(host.loops);

// Each call of these is one call site, as `chp.range(...)`/`chp.each(...)` are in user code.
const r = (host: LoopHost, start: number, end?: number, step?: number) =>
  range(host, r, start, end, step);
function e<I>(host: LoopHost, items: Iterable<I>): Iterable<I>;
function e<I>(host: LoopHost, items: AsyncIterable<I>): AsyncIterable<I>;
function e<I>(host: LoopHost, items: Iterable<I> | AsyncIterable<I>) {
  return each(host, e, items);
}

const KEY = /^loops\.test\.ts:\d+:\d+$/;

describe('range', () => {
  it('yields the values of Python’s range', () => {
    const h = fakeHost();
    expect([...r(h, 5)]).toEqual([0, 1, 2, 3, 4]);
    expect([...r(h, 2, 10, 3)]).toEqual([2, 5, 8]);
    expect([...r(h, 10, 0, -3)]).toEqual([10, 7, 4, 1]);
    expect([...r(h, -2, 2)]).toEqual([-2, -1, 0, 1]);
    expect([...r(h, 0, 1, 0.25)]).toEqual([0, 0.25, 0.5, 0.75]);
    expect([...r(h, 0, -3, -1)]).toEqual([0, -1, -2]);
    for (const [start, end, step] of [
      [0, undefined, undefined],
      [-3, undefined, undefined],
      [5, 5, undefined],
      [5, 0, undefined],
      [0, 5, -1],
      [0, Number.NEGATIVE_INFINITY, 1],
    ] as const) {
      expect([...r(h, start, end, step)]).toEqual([]);
    }
  });

  it('counts an endless range with end = Infinity', () => {
    const h = fakeHost();
    const seen: number[] = [];
    for (const i of r(h, 10, Number.POSITIVE_INFINITY, 10)) {
      if (i > 50) break;
      seen.push(i);
    }
    expect(seen).toEqual([10, 20, 30, 40, 50]);
    expect([...h.loops.values()]).toEqual([5]); // item 5 (value 60) was not done
  });

  it('rejects a zero step and bad arguments with clear messages', () => {
    const h = fakeHost();
    expect(() => r(h, 0, 10, 0)).toThrow(
      new RangeError('Expected `step` to be a non-zero number, got `0` (number)'),
    );
    expect(() => r(h, 0, 10, -0)).toThrow(RangeError);
    expect(() => r(h, '5' as unknown as number)).toThrow(
      new TypeError("Expected `end` to be a number, got `'5'` (string)"),
    );
    expect(() => r(h, Number.NaN, 3)).toThrow(
      new RangeError('Expected `start` to be a finite number, got `NaN` (number)'),
    );
    expect(() => r(h, 0, 3, Number.POSITIVE_INFINITY)).toThrow(
      new RangeError('Expected `step` to be a finite number, got `Infinity` (number)'),
    );
    expect(() => r(h, 0, Number.NaN)).toThrow(
      new RangeError('Expected `end` to be a finite number or ±Infinity, got `NaN` (number)'),
    );
    expect(() => r(h, 0, 2 ** 60)).toThrow(/at most 9007199254740991 items/);
  });

  it('calls sync() once per boundary, after counting the item as done', () => {
    const h = fakeHost();
    const state = { sum: 0 };
    h.state = state;
    for (const i of r(h, 5)) state.sum += i;
    expect(h.syncs).toBe(5);
    const [key] = [...h.loops.keys()];
    expect(key).toMatch(KEY);
    // The save at the boundary after item i holds position i + 1 and the state after item i.
    expect(h.saves.map((s) => s.positions.get(key!))).toEqual([1, 2, 3, 4, 5]);
    expect(h.saves.map((s) => (s.state as { sum: number }).sum)).toEqual([0, 1, 3, 6, 10]);
  });

  it('keeps no position for a loop that stopped before finishing its first item', () => {
    const h = fakeHost();
    for (const _ of r(h, 5)) break;
    expect(h.loops.size).toBe(0);
    expect(h.syncs).toBe(0);
  });
});

/** A computation with one loop, run until `stopAt` (exclusive) like a process killed there. */
function work(host: FakeHost, n: number, stopAt = Number.POSITIVE_INFINITY): number[] {
  const done: number[] = [];
  for (const i of r(host, n)) {
    if (i === stopAt) break;
    done.push(i);
  }
  return done;
}

describe('resuming', () => {
  it('starts a restored loop at its first unfinished item', () => {
    const first = fakeHost();
    expect(work(first, 10, 6)).toEqual([0, 1, 2, 3, 4, 5]);
    const second = fakeHost(lastSave(first));
    expect(work(second, 10)).toEqual([6, 7, 8, 9]);
    // Finished: a third run does nothing, a longer range continues.
    const third = fakeHost(lastSave(second));
    expect(work(third, 10)).toEqual([]);
    expect(work(fakeHost(lastSave(second)), 12)).toEqual([10, 11]);
  });

  it('resumes stepped ranges by position: value = start + k * step', () => {
    const run = (h: FakeHost, stop: number) => {
      const out: number[] = [];
      for (const v of r(h, 100, 0, -7)) {
        if (v === stop) break;
        out.push(v);
      }
      return out;
    };
    const a = fakeHost();
    expect(run(a, 79)).toEqual([100, 93, 86]);
    expect(run(fakeHost(lastSave(a)), -1)).toEqual([79, 72, 65, 58, 51, 44, 37, 30, 23, 16, 9, 2]);
  });

  it('keeps the position of an item that threw: it is redone', () => {
    const run = (h: FakeHost, throwAt: number) => {
      const seen: number[] = [];
      for (const i of r(h, 5)) {
        seen.push(i);
        if (i === throwAt) throw Object.assign(new Error('boom'), { seen });
      }
      return seen;
    };
    const a = fakeHost();
    expect(() => run(a, 3)).toThrow('boom');
    expect([...a.loops.values()]).toEqual([3]);
    expect(run(fakeHost(new Map(a.loops)), -1)).toEqual([3, 4]);
  });

  it('ends the loop and keeps its position when sync() throws', () => {
    const h = fakeHost();
    let calls = 0;
    h.sync = () => {
      if (++calls === 2) throw new Error('disk full');
    };
    const seen: number[] = [];
    expect(() => {
      for (const i of r(h, 5)) seen.push(i);
    }).toThrow('disk full');
    expect(seen).toEqual([0, 1]);
    expect([...h.loops.values()]).toEqual([2]);
    // The loop left the running loops: a new one is top level, not nested in it.
    for (const _ of r(h, 1));
    expect([...h.loops.keys()].every((k) => KEY.test(k))).toBe(true);
  });
});

/** Two loops one after the other; stops (like a kill) when `stop(loop, item)` says so. */
function twoLoops(host: FakeHost, stop: (loop: string, i: number) => boolean): string[] {
  const log: string[] = [];
  for (const i of r(host, 3)) {
    if (stop('a', i)) return log;
    log.push(`a${i}`);
  }
  for (const i of r(host, 4)) {
    if (stop('b', i)) return log;
    log.push(`b${i}`);
  }
  return log;
}

describe('two loops in one function', () => {
  it('skips the finished first loop after a restart and resumes the second', () => {
    const a = fakeHost();
    expect(twoLoops(a, (loop, i) => loop === 'b' && i === 2)).toEqual([
      'a0',
      'a1',
      'a2',
      'b0',
      'b1',
    ]);
    const positions = lastSave(a);
    expect([...positions.values()]).toEqual([3, 2]);
    const keys = [...positions.keys()];
    expect(keys[0]).not.toBe(keys[1]);
    expect(twoLoops(fakeHost(positions), () => false)).toEqual(['b2', 'b3']);
  });
});

/** Nested loops; records the keys present at each save. */
function nested(host: FakeHost, stop: (i: number, j: number) => boolean): string[] {
  const log: string[] = [];
  for (const i of r(host, 3)) {
    for (const j of e(host, ['x', 'y', 'z'])) {
      if (stop(i, ['x', 'y', 'z'].indexOf(j))) return log;
      log.push(`${i}${j}`);
    }
  }
  return log;
}

describe('nested loops', () => {
  it('keys an inner loop under the outer loop’s key and item, and drops it when the item is done', () => {
    const h = fakeHost();
    expect(nested(h, () => false)).toHaveLength(9);
    const keysAt = h.saves.map((s) => [...s.positions.keys()]);
    const outer = keysAt.at(-1)![0]!;
    expect(outer).toMatch(KEY);
    const inner = keysAt[0]![1]!;
    const innerSite = inner.slice(`${outer}[0]/`.length);
    expect(inner).toBe(`${outer}[0]/${innerSite}`);
    expect(innerSite).toMatch(KEY);
    // Saves: 3 inner boundaries then 1 outer boundary, per outer item.
    expect(h.syncs).toBe(12);
    const shapes = h.saves.map((s) =>
      [...s.positions].map(([k, v]) => `${k.replace(outer, 'O').replace(innerSite, 'I')}=${v}`),
    );
    expect(shapes).toEqual([
      ['O=0', 'O[0]/I=1'],
      ['O=0', 'O[0]/I=2'],
      ['O=0', 'O[0]/I=3'],
      ['O=1'], // item 0 done: its inner position dropped
      ['O=1', 'O[1]/I=1'],
      ['O=1', 'O[1]/I=2'],
      ['O=1', 'O[1]/I=3'],
      ['O=2'],
      ['O=2', 'O[2]/I=1'],
      ['O=2', 'O[2]/I=2'],
      ['O=2', 'O[2]/I=3'],
      ['O=3'],
    ]);
    expect([...h.loops]).toEqual([[outer, 3]]);
  });

  it('resumes both levels: the outer item is redone, its inner loop skips its done items', () => {
    const a = fakeHost();
    expect(nested(a, (i, j) => i === 1 && j === 2)).toEqual(['0x', '0y', '0z', '1x', '1y']);
    expect(nested(fakeHost(lastSave(a)), () => false)).toEqual(['1z', '2x', '2y', '2z']);
  });

  it('drops stale inner positions left under another item', () => {
    const a = fakeHost();
    nested(a, (i, j) => i === 1 && j === 1);
    const saved = lastSave(a);
    const outer = [...saved.keys()][0]!;
    saved.set(`${outer}[0]/ghost.mjs:1:1`, 5); // under an item already done
    const b = fakeHost(saved);
    expect(nested(b, () => false)).toEqual(['1y', '1z', '2x', '2y', '2z']);
    expect([...b.loops.keys()]).toEqual([outer]);
  });

  it('numbers a call site started again in the same scope: #2, #3', () => {
    const h = fakeHost();
    const helper = (host: FakeHost, stopAt: number, log: string[], tag: string) => {
      for (const j of r(host, 3)) {
        if (j === stopAt) return false;
        log.push(`${tag}${j}`);
      }
      return true;
    };
    const program = (host: FakeHost, stop: boolean) => {
      const log: string[] = [];
      for (const i of r(host, 2)) {
        if (!helper(host, -1, log, `${i}a`)) return log;
        if (!helper(host, stop && i === 1 ? 1 : -1, log, `${i}b`)) return log;
      }
      return log;
    };
    expect(program(h, true)).toEqual([
      '0a0',
      '0a1',
      '0a2',
      '0b0',
      '0b1',
      '0b2',
      '1a0',
      '1a1',
      '1a2',
      '1b0',
    ]);
    const keys = [...lastSave(h).keys()];
    expect(keys).toHaveLength(3);
    expect(keys[2]).toBe(`${keys[1]}#2`);
    // Restart: the first helper call of item 1 is done, the second resumes.
    expect(program(fakeHost(lastSave(h)), false)).toEqual(['1b1', '1b2']);
  });

  it('treats each iteration of the same iterable as a new run', () => {
    const h = fakeHost();
    const loop = r(h, 2);
    expect([...loop]).toEqual([0, 1]);
    expect([...loop]).toEqual([0, 1]);
    expect([...h.loops.values()]).toEqual([2, 2]);
    const [first, second] = [...h.loops.keys()];
    expect(second).toBe(`${first}#2`);
  });
});

describe('each', () => {
  it('iterates an array and resumes by index', () => {
    const items = ['a', 'b', 'c', 'd'];
    const run = (h: FakeHost, stop?: string) => {
      const out: string[] = [];
      for (const x of e(h, items)) {
        if (x === stop) break;
        out.push(x);
      }
      return out;
    };
    const a = fakeHost();
    expect(run(a, 'c')).toEqual(['a', 'b']);
    expect(run(fakeHost(lastSave(a)))).toEqual(['c', 'd']);
    expect(a.syncs).toBe(2);
  });

  it('iterates typed arrays, strings, Sets and Maps', () => {
    const h = fakeHost();
    expect([...e(h, new Float64Array([1.5, 2.5]))]).toEqual([1.5, 2.5]);
    expect([...e(h, 'a😀b')]).toEqual(['a', '😀', 'b']);
    expect([...e(h, new Set([3, 1]))]).toEqual([3, 1]);
    expect([...e(h, new Map([['k', 1]]))]).toEqual([['k', 1]]);
  });

  it('skips the done items of a one-shot generator by consuming them', () => {
    let pulled = 0;
    function* source() {
      for (let i = 0; i < 6; i++) {
        pulled++;
        yield i * 10;
      }
    }
    const run = (h: FakeHost, stop?: number) => {
      const out: number[] = [];
      for (const x of e(h, source())) {
        if (x === stop) break;
        out.push(x);
      }
      return out;
    };
    const a = fakeHost();
    expect(run(a, 30)).toEqual([0, 10, 20]);
    pulled = 0;
    expect(run(fakeHost(lastSave(a)))).toEqual([30, 40, 50]);
    expect(pulled).toBe(6); // 3 discarded, 3 yielded
  });

  it('closes the source when the loop is left early', () => {
    let closed = false;
    function* source() {
      try {
        yield 1;
        yield 2;
      } finally {
        closed = true;
      }
    }
    for (const _ of e(fakeHost(), source())) break;
    expect(closed).toBe(true);
  });

  it('finishes at once when the source has fewer items than were done', () => {
    const drain = (host: FakeHost, items: Iterable<number>) => [...e(host, items)];
    const h = fakeHost();
    expect(drain(h, [1, 2, 3])).toEqual([1, 2, 3]);
    const key = [...h.loops.keys()][0]!;
    const b = fakeHost(new Map([[key, 10]]));
    function* three() {
      yield* [1, 2, 3];
    }
    expect(drain(b, three())).toEqual([]);
    expect(b.loops.get(key)).toBe(10);
    expect(b.syncs).toBe(0);
  });

  it('iterates and resumes an async generator, closing it on break', async () => {
    let closed = 0;
    async function* pages() {
      try {
        for (let i = 0; i < 5; i++) {
          await new Promise((resolve) => setTimeout(resolve, 1));
          yield `page${i}`;
        }
      } finally {
        closed++;
      }
    }
    const run = async (h: FakeHost, stop?: string) => {
      const out: string[] = [];
      for await (const p of e(h, pages())) {
        if (p === stop) break;
        out.push(p);
      }
      return out;
    };
    const a = fakeHost();
    expect(await run(a, 'page2')).toEqual(['page0', 'page1']);
    expect(closed).toBe(1);
    expect(a.syncs).toBe(2);
    const b = fakeHost(lastSave(a));
    expect(await run(b)).toEqual(['page2', 'page3', 'page4']);
    expect(b.syncs).toBe(3);
    expect([...b.loops.values()]).toEqual([5]);
  });

  it('nests loops inside an async loop', async () => {
    async function* two() {
      yield 'p';
      yield 'q';
    }
    const h = fakeHost();
    const log: string[] = [];
    for await (const p of e(h, two())) {
      for (const i of r(h, 2)) log.push(`${p}${i}`);
    }
    expect(log).toEqual(['p0', 'p1', 'q0', 'q1']);
    expect(h.loops.size).toBe(1);
    const keys = h.saves.flatMap((s) => [...s.positions.keys()]);
    expect(keys.some((k) => k.includes('[1]/'))).toBe(true);
  });

  it('rejects what is not iterable', () => {
    expect(() => e(fakeHost(), 42 as unknown as number[])).toThrow(
      new TypeError('Expected `items` to be an iterable or an async iterable, got `42` (number)'),
    );
    expect(() => e(fakeHost(), null as unknown as number[])).toThrow(TypeError);
  });
});

describe('positions', () => {
  it('restorePositions keeps only string keys with non-negative safe integers', () => {
    const h = fakeHost();
    h.loops.set('old', 1);
    restorePositions(
      h,
      new Map<unknown, unknown>([
        ['a', 3],
        ['b', -1],
        ['c', 1.5],
        [4, 4],
        ['d', '7'],
      ]),
    );
    expect([...h.loops]).toEqual([['a', 3]]);
    restorePositions(h, undefined);
    expect(h.loops.size).toBe(0);
  });

  it('loopPositions writes the running loops’ positions (items done, not the current one)', () => {
    const h = fakeHost();
    const seen: number[][] = [];
    for (const i of r(h, 3)) seen.push([i, ...loopPositions(h).values()]);
    expect(seen).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
    ]);
  });
});

describe('progress', () => {
  it('starts a display at the restored position, ticks each boundary, stops at the end', () => {
    const events: string[] = [];
    const progress = (label: string, done: number, total: number | undefined): LoopProgress => {
      events.push(`start ${label.replace(/^loops\.test\.ts:\d+:\d+$/, 'site')} ${done}/${total}`);
      return { tick: (d) => events.push(`tick ${d}`), stop: () => events.push('stop') };
    };
    const a = fakeHost(undefined, progress);
    work(a, 4, 2);
    expect(events).toEqual(['start site 0/4', 'tick 1', 'tick 2', 'stop']);
    events.length = 0;
    work(fakeHost(lastSave(a), progress), 4);
    expect(events).toEqual(['start site 2/4', 'tick 3', 'tick 4', 'stop']);
    events.length = 0;
    for (const _ of e(fakeHost(undefined, progress), (function* () {})()));
    expect(events).toEqual(['start site 0/undefined', 'stop']);
  });

  it('shows nothing for a loop with nothing left to do', () => {
    const events: string[] = [];
    const progress = (): LoopProgress => {
      events.push('start');
      return { tick() {}, stop() {} };
    };
    expect(work(fakeHost(undefined, progress), 0)).toEqual([]);
    expect(events).toEqual([]);
  });
});

describe('installMathRandom', () => {
  const original = Math.random;
  afterEach(() => {
    Math.random = original;
  });
  const constant = (v: number) => () => v;

  it('routes Math.random and puts the original back', () => {
    const uninstall = installMathRandom(constant(0.25));
    expect(Math.random()).toBe(0.25);
    uninstall();
    expect(Math.random).toBe(original);
    uninstall(); // idempotent
    expect(Math.random).toBe(original);
  });

  it('restores nested installs in LIFO order', () => {
    const a = installMathRandom(constant(0.1));
    const b = installMathRandom(constant(0.2));
    expect(Math.random()).toBe(0.2);
    b();
    expect(Math.random()).toBe(0.1);
    a();
    expect(Math.random).toBe(original);
  });

  it('never leaves a closed generator in place when uninstalled out of order', () => {
    const a = installMathRandom(constant(0.1));
    const b = installMathRandom(constant(0.2));
    a();
    expect(Math.random()).toBe(0.2);
    const c = installMathRandom(constant(0.3));
    b();
    expect(Math.random()).toBe(0.3);
    c();
    expect(Math.random).toBe(original);
  });

  it('leaves a replacement made by someone else in place', () => {
    const a = installMathRandom(constant(0.1));
    const mock = constant(0.9);
    Math.random = mock;
    a();
    expect(Math.random).toBe(mock);
    Math.random = original;
    const b = installMathRandom(constant(0.5));
    b();
    expect(Math.random).toBe(original);
  });
});
