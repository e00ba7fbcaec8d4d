/**
 * Misuse gets an error, never silence (#14.4): sync() with no state, a second restore(), any
 * use of a closed checkpoint, each with its exact class, code and message; a
 * SerializationError's stack starts at the user's own line.
 */
import { describe, expect, it } from 'vitest';
import {
  Checkpoint,
  CheckpointClosedError,
  CheckpointError,
  memoryStore,
  SerializationError,
} from '../dist/index.js';
import { cleanedAfterEach, thrownBy } from './helpers.js';

const { open } = cleanedAfterEach('rs-misuse-');

function checkpoint(name: string, options: { interval?: number } = {}) {
  const chp = new Checkpoint<{ n: number }>({
    name,
    store: memoryStore(),
    log: false,
    signals: false,
    ...options,
  });
  open.push(chp);
  return chp;
}

/** The error's class, code and message, for one exact comparison. */
function described(err: unknown) {
  const e = err as Error & { code?: string };
  return { class: e.constructor.name, code: e.code, message: e.message };
}

describe('sync() before restore() (#14.4)', () => {
  it('throws the TypeError save() throws, at its first call, due or not', () => {
    for (const interval of [0, 60_000]) {
      const chp = checkpoint(`nothing-${interval}`, { interval });
      expect(described(thrownBy(() => chp.sync()))).toEqual({
        class: 'TypeError',
        code: undefined,
        message: 'Nothing to save: call restore(initial) first, or pass the state to sync(state)',
      });
      expect(described(thrownBy(() => chp.save()))).toEqual({
        class: 'TypeError',
        code: undefined,
        message: 'Nothing to save: call restore(initial) first, or pass the state to save(state)',
      });
    }
  });

  it('given the state, the first sync() is not due before its interval', () => {
    const chp = checkpoint('given', { interval: 60_000 });
    expect(chp.sync({ n: 1 })).toBe(false);
    expect(chp.sync()).toBe(false);
    expect(chp.info).toBe(undefined);
  });
});

describe('a second restore() (#14.4)', () => {
  it('throws a TypeError saying what to do, and the live state keeps its changes', () => {
    const store = memoryStore();
    const options = { name: 'twice', store, log: false, signals: false } as const;
    const chp = new Checkpoint<{ n: number }>(options);
    open.push(chp);
    const live = chp.restore({ n: 0 });
    live.n = 5;
    expect(described(thrownBy(() => chp.restore({ n: 0 })))).toEqual({
      class: 'TypeError',
      code: undefined,
      message:
        'restore() was already called on checkpoint "twice": keep using the object it returned (it is the live state); to replace the state, pass the new object to save(state) or sync(state)',
    });
    chp.save();
    chp.close();
    const next = new Checkpoint<{ n: number }>(options);
    open.push(next);
    expect(next.restore({ n: 0 })).toEqual({ n: 5 });
  });

  it('with enabled: false, restore() returns initial every time (a no-op checkpoint)', () => {
    const chp = new Checkpoint({ name: 'off', store: memoryStore(), enabled: false });
    open.push(chp);
    const a = { n: 1 };
    const b = { n: 2 };
    expect(chp.restore(a)).toBe(a);
    expect(chp.restore(b)).toBe(b);
  });
});

describe('a closed checkpoint (#14.4)', () => {
  const closedError = (method: string) => ({
    class: 'CheckpointClosedError',
    code: 'CHECKPOINT_CLOSED',
    message: `Checkpoint "closed" is closed, so ${method}() cannot run: it no longer owns its files. Open a new Checkpoint with the same name to continue from what it saved`,
  });

  it('throws CHECKPOINT_CLOSED with advice from every method that reads or writes', async () => {
    const chp = checkpoint('closed', { interval: 60_000 });
    chp.restore({ n: 1 });
    chp.close();
    const calls: [string, () => unknown][] = [
      ['save', () => chp.save()],
      ['sync', () => chp.sync()],
      ['restore', () => chp.restore({ n: 0 })],
      ['clear', () => chp.clear()],
      ['track', () => chp.track('t', { getState: () => 1, setState() {} })],
      ['range', () => chp.range(3)],
      ['each', () => chp.each([1])],
    ];
    for (const [method, call] of calls) {
      expect({ method, ...described(thrownBy(call)) }).toEqual({
        method,
        ...closedError(method),
      });
    }
    const rejected = await chp.once('k', () => 1).catch((e: unknown) => e);
    expect(described(rejected)).toEqual(closedError('once'));
    expect(rejected).toBeInstanceOf(CheckpointClosedError);
    expect(rejected).toBeInstanceOf(CheckpointError);
    // What needs no files still answers; closing again does nothing.
    expect(chp.stats()).toEqual({ done: 0, failed: 0, pending: 0 });
    await chp.flush();
    chp.close();
  });
});

describe("a SerializationError's stack (#14.4)", () => {
  function saveUnstorable(chp: Checkpoint<{ n: number }>, how: 'save' | 'sync') {
    // Deeper than Node's 10 stack frames of encoder recursion.
    let deep: Record<string, unknown> = { fn: () => 1 };
    for (let i = 0; i < 15; i++) deep = { deep };
    const state = { n: 1, deep } as unknown as { n: number };
    return how === 'save' ? thrownBy(() => chp.save(state)) : thrownBy(() => chp.sync(state));
  }

  for (const how of ['save', 'sync'] as const) {
    it(`from ${how}() starts at the user's own line`, () => {
      const chp = checkpoint(`stack-${how}`, { interval: 0 });
      const err = saveUnstorable(chp, how) as SerializationError;
      expect(err).toBeInstanceOf(SerializationError);
      expect(err.code).toBe('CHECKPOINT_UNSERIALIZABLE');
      expect(err.path).toBe(`state${'.deep'.repeat(16)}.fn`);
      const frames = err.stack!.split('\n').filter((line) => line.startsWith('    at '));
      expect(frames[0]).toMatch(/misuse\.test\.ts:\d+:\d+\)?$/);
      expect(err.stack!.startsWith(`SerializationError: ${err.message}\n`)).toBe(true);
    });
  }
});
