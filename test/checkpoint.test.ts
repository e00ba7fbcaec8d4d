import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { packCheckpoint } from '../dist/codec/container.js';
import { encodeState } from '../dist/codec/serializer.js';
import {
  Checkpoint,
  CheckpointClosedError,
  type CheckpointOptions,
  CorruptCheckpointError,
  memoryStore,
  VersionMismatchError,
} from '../dist/index.js';
import { parseDuration } from '../dist/options.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'rs-chp-'));
const open: Checkpoint<object>[] = [];

/** A checkpoint closed after the test, silent unless `lines` collects its notices. */
function checkpoint<T extends object = Record<string, unknown>>(
  options: CheckpointOptions,
  lines?: string[],
): Checkpoint<T> {
  const chp = new Checkpoint<T>({
    signals: false,
    log: lines === undefined ? false : (line) => lines.push(line),
    ...options,
  });
  open.push(chp as Checkpoint<object>);
  return chp;
}

afterEach(() => {
  for (const chp of open.splice(0)) chp.close();
  vi.useRealTimers();
});

describe("the seed's primes example", () => {
  const primesFixture = new URL('./fixtures/primes.mjs', import.meta.url).pathname;

  test('computePrimes() gives 11 primes, then computePrimes(5) continues to 16, in one process', () => {
    const dir = tempDir();
    const out = execFileSync(process.execPath, [primesFixture, 'both'], {
      encoding: 'utf8',
      env: { ...process.env, RESUME_DIR: dir },
    });
    expect(out).toBe('2 3 5 7 11 13 17 19 23 29 31\n2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53\n');
  });

  test('and across two processes, with the checkpoint named after the function', () => {
    const dir = tempDir();
    const env = { ...process.env, RESUME_DIR: dir };
    const first = execFileSync(process.execPath, [primesFixture, '10'], { encoding: 'utf8', env });
    expect(first).toBe('2 3 5 7 11 13 17 19 23 29 31\n');
    expect(readdirSync(dir)).toEqual(['primes.computePrimes.ckpt']);
    const second = execFileSync(process.execPath, [primesFixture, '5'], { encoding: 'utf8', env });
    expect(second).toBe('2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53\n');
  });
});

describe('restore', () => {
  test('returns initial itself when nothing is saved', () => {
    const chp = checkpoint({ name: 'fresh', store: memoryStore() });
    const initial = { a: 1 };
    expect(chp.restore(initial)).toBe(initial);
    expect(chp.restored).toBe(false);
    expect(chp.info).toBeUndefined();
  });

  test('fills keys missing from the saved state from initial', () => {
    const store = memoryStore();
    const first = checkpoint<{ a: number; b?: string }>({ name: 'fill', store });
    first.restore({ a: 1 }).a = 5;
    first.save();
    const second = checkpoint<{ a: number; b?: string }>({ name: 'fill', store });
    expect(second.restore({ a: 0, b: 'new' })).toEqual({ a: 5, b: 'new' });
    expect(second.restored).toBe(true);
  });

  test('save(state) and sync(state) make that object the tracked state', () => {
    const store = memoryStore();
    const chp = checkpoint<{ a: number; b: number }>({ name: 'arg', store, interval: 0 });
    let { a, b } = chp.restore({ a: 1, b: 2 });
    a += 10;
    b += 20;
    expect(chp.sync({ a, b })).toBe(true);
    const again = checkpoint<{ a: number; b: number }>({ name: 'arg', store });
    expect(again.restore({ a: 0, b: 0 })).toEqual({ a: 11, b: 22 });
  });

  test('info holds the metadata of the loaded checkpoint', () => {
    const store = memoryStore();
    const first = checkpoint({ name: 'meta', store, seed: 99 });
    first.restore({ x: 1 });
    first.save();
    first.save();
    const second = checkpoint({ name: 'meta', store }, []);
    second.restore({ x: 0 });
    const info = second.info!;
    expect(info.name).toBe('meta');
    expect(info.saves).toBe(2);
    expect(info.seed).toBe(99);
    expect(info.pid).toBe(process.pid);
    expect(info.library).toBe('resumable-state@0.1.0');
    expect(Date.parse(info.savedAt)).toBeGreaterThanOrEqual(Date.parse(info.createdAt));
    expect(info.source).toEqual({
      file: new URL(import.meta.url).pathname,
      function: 'checkpoint',
    });
  });

  test('prints one line saying it resumed', () => {
    const store = memoryStore();
    const first = checkpoint({ name: 'loud', store });
    first.restore({ x: 1 });
    first.save();
    const lines: string[] = [];
    checkpoint({ name: 'loud', store }, lines).restore({ x: 0 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^resumable-state: resumed "loud" from save #1 of \d+\.\ds ago \(memory:loud\)$/,
    );
  });

  test('a second instance gets its own object, never an alias of the first', () => {
    const store = memoryStore();
    const first = checkpoint<{ list: number[] }>({ name: 'alias', store });
    const s1 = first.restore({ list: [1] });
    first.save();
    const s2 = checkpoint<{ list: number[] }>({ name: 'alias', store }).restore({ list: [] });
    expect(s2).toEqual({ list: [1] });
    s1.list.push(2);
    expect(s2.list).toEqual([1]);
  });

  test('the random generator continues from its saved state', () => {
    const store = memoryStore();
    const first = checkpoint({ name: 'rng', store, seed: 5 });
    first.restore({});
    first.random.next();
    first.save();
    const expected = [first.random.next(), first.random.next()];
    const second = checkpoint({ name: 'rng', store, seed: 1234 });
    second.restore({});
    expect([second.random.next(), second.random.next()]).toEqual(expected);
  });

  test("track() saves another object's state with every save and restores it, before or after restore()", () => {
    class Counter {
      n = 0;
      getState() {
        return { n: this.n };
      }
      setState(state: unknown) {
        this.n = (state as { n: number }).n;
      }
    }
    const store = memoryStore();
    const first = checkpoint({ name: 'tracked', store });
    const engine = new Counter();
    const other = new Counter();
    first.track('engine', engine);
    first.restore({ x: 1 });
    first.track('other', other);
    engine.n = 7;
    other.n = 9;
    first.save();

    const second = checkpoint({ name: 'tracked', store });
    const before = new Counter();
    second.track('engine', before); // tracked before restore(): set when restore() runs
    second.restore({ x: 0 });
    expect(before.n).toBe(7);
    const after = new Counter();
    second.track('other', after); // tracked after restore(): set at once
    expect(after.n).toBe(9);
    expect(() => second.track('', after)).toThrow(
      new TypeError('Expected `name` to be a non-empty string, got ``'),
    );
    expect(() => second.track('bad', {} as Counter)).toThrow(
      new TypeError('Expected `obj` to have getState() and setState(state) methods'),
    );
  });

  test('an intact file whose random state is not one is CorruptCheckpointError, not a TypeError', () => {
    const store = memoryStore();
    const meta = {
      name: 'odd',
      source: {},
      createdAt: '2026-01-01T00:00:00.000Z',
      savedAt: new Date().toISOString(),
      saves: 1,
      library: 'x',
      node: 'x',
      host: 'x',
      pid: 1,
    };
    store.write(
      'odd',
      packCheckpoint(meta, encodeState({ state: {}, random: 5, tracked: {} }), 'none'),
      2,
    );
    const chp = checkpoint({ name: 'odd', store });
    expect(() => chp.restore({})).toThrow(CorruptCheckpointError);
    expect(() => chp.restore({})).toThrow(
      /^Checkpoint file memory:odd could not be restored: Expected `state` to be a plain object, got `5`$/,
    );
  });

  test('rejects an initial value that is not an object', () => {
    const chp = checkpoint({ name: 'bad', store: memoryStore() });
    expect(() => chp.restore(5 as unknown as Record<string, unknown>)).toThrow(
      new TypeError('Expected `initial` to be an object, got `5` (number)'),
    );
  });
});

describe('save and sync', () => {
  test('save() with nothing to save says what to do', () => {
    const chp = checkpoint({ name: 'empty', store: memoryStore() });
    expect(() => chp.save()).toThrow(
      new TypeError(
        'Nothing to save: call restore(initial) first, or pass the state to save(state)',
      ),
    );
  });

  test('sync() is not due before the interval has passed', () => {
    const chp = checkpoint({ name: 'notdue', store: memoryStore(), interval: '1h' });
    chp.restore({ a: 1 });
    expect(chp.sync()).toBe(false);
    expect(chp.info).toBeUndefined();
  });

  test('sync() saves once the interval has passed, then waits a full interval again', async () => {
    const store = memoryStore();
    const chp = checkpoint({ name: 'due', store, interval: 200 });
    chp.restore({ a: 1 });
    const started = Date.now();
    // The background thread raises the flag; on a loaded machine it may be late, never early.
    let saved = chp.sync();
    while (!saved && Date.now() - started < 10_000) {
      await new Promise((r) => setTimeout(r, 20));
      saved = chp.sync();
    }
    expect(saved).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(chp.sync()).toBe(false);
    expect(chp.info?.saves).toBe(1);
  });

  // #14.4 changed this: sync() after close() returned false, silently.
  test('after close(), sync() and save() say the checkpoint is closed and write nothing', () => {
    const store = memoryStore();
    const chp = checkpoint({ name: 'closed', store, interval: 0 });
    chp.restore({ a: 1 });
    chp.close();
    const closed = (method: string) =>
      new CheckpointClosedError(
        `Checkpoint "closed" is closed, so ${method}() cannot run: it no longer owns its files. Open a new Checkpoint with the same name to continue from what it saved`,
      );
    expect(() => chp.sync()).toThrow(closed('sync'));
    expect(() => chp.save()).toThrow(closed('save'));
    expect(store.generations('closed')).toEqual([]);
  });

  test('interval: 0 makes every sync() save', () => {
    const chp = checkpoint({ name: 'zero', store: memoryStore(), interval: 0 });
    chp.restore({ a: 1 });
    expect([chp.sync(), chp.sync(), chp.sync()]).toEqual([true, true, true]);
    expect(chp.info?.saves).toBe(3);
  });
});

describe('options', () => {
  test.each([
    [{ keep: 0 }, RangeError, 'Expected `keep` to be an integer from 1 to 1000, got `0` (number)'],
    [
      { keep: 1.5 },
      RangeError,
      'Expected `keep` to be an integer from 1 to 1000, got `1.5` (number)',
    ],
    [
      { interval: '10 parsecs' },
      TypeError,
      "Expected `interval` to be milliseconds >= 0 or a duration like '30s', '5m', '2h', got `'10 parsecs'` (string)",
    ],
    [
      { interval: -1 },
      RangeError,
      "Expected `interval` to be milliseconds >= 0 or a duration like '30s', '5m', '2h', got `-1` (number)",
    ],
    [
      { expire: true },
      TypeError,
      "Expected `expire` to be milliseconds >= 0 or a duration like '30s', '5m', '2h', got `true` (boolean)",
    ],
    [{ name: 42 }, TypeError, 'Expected `name` to be a string, got `42` (number)'],
    [{ name: '' }, TypeError, "Expected `name` to be a non-empty string, got `''`"],
    [{ clean: 'yes' }, TypeError, "Expected `clean` to be a boolean, got `'yes'` (string)"],
    [
      { seed: -1 },
      RangeError,
      'Expected `seed` to be a non-negative safe integer or a string, got `-1` (number)',
    ],
    [
      { compression: 'zip' },
      TypeError,
      "Expected `compression` to be 'brotli', 'gzip' or 'none', got `'zip'` (string)",
    ],
    [
      { store: {} },
      TypeError,
      'Expected `store` to be a checkpoint store, got `[object Object]` (object)',
    ],
    [{ intervall: 5 }, TypeError, 'Unknown option `intervall`'],
  ])('%o is rejected with a message naming the option', (options, ErrorClass, message) => {
    expect(() => new Checkpoint(options as CheckpointOptions)).toThrow(new ErrorClass(message));
  });

  test('durations accept ms, s, m, h, d', () => {
    for (const interval of [0, 250, '250ms', '30s', '5m', '2h', '1d', '1.5s']) {
      expect(() => checkpoint({ name: 'dur', store: memoryStore(), interval })).not.toThrow();
    }
  });

  test("numeric strings are milliseconds, as environment variables give them: interval '0' saves at every sync() (#14.7)", () => {
    const store = memoryStore();
    const chp = checkpoint({ name: 'env-interval', store, interval: '0' });
    chp.restore({ n: 0 });
    expect(chp.sync()).toBe(true);
    for (const [value, ms] of [
      ['250', 250],
      [' 1500 ', 1500],
      ['2.5', 2.5],
    ] as const) {
      expect(parseDuration(value, 'interval')).toBe(ms);
    }
    expect(() => parseDuration('', 'interval')).toThrow(
      new TypeError(
        "Expected `interval` to be milliseconds >= 0 or a duration like '30s', '5m', '2h', got `''` (string)",
      ),
    );
  });

  test('enabled: false makes every method a no-op that returns initial', () => {
    const store = memoryStore();
    const chp = checkpoint({ name: 'off', store, enabled: false, interval: 0 });
    const initial = { a: 1 };
    expect(chp.restore(initial)).toBe(initial);
    chp.save();
    expect(chp.sync()).toBe(false);
    expect(store.generations('off')).toEqual([]);
  });

  test('env RESUME=off disables like enabled: false', () => {
    const store = memoryStore();
    vi.stubEnv('RESUME', 'off');
    try {
      const chp = checkpoint({ name: 'envoff', store });
      chp.restore({ a: 1 });
      chp.save();
      expect(store.generations('envoff')).toEqual([]);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  test('clean: true ignores saved state and starts fresh', () => {
    const store = memoryStore();
    const first = checkpoint({ name: 'clean', store });
    first.restore({ a: 1 }).a = 2;
    first.save();
    const second = checkpoint({ name: 'clean', store, clean: true });
    const initial = { a: 1 };
    expect(second.restore(initial)).toBe(initial);
    expect(second.restored).toBe(false);
  });

  test('key keeps separate checkpoints per input; the same key resumes', () => {
    const store = memoryStore();
    const a = checkpoint<{ n: number }>({ name: 'job', key: { file: 'a.csv', rows: 10 }, store });
    a.restore({ n: 0 }).n = 1;
    a.save();
    const b = checkpoint<{ n: number }>({ name: 'job', key: 'b.csv', store });
    expect(b.restore({ n: 0 })).toEqual({ n: 0 });
    expect(b.name).not.toBe(a.name);
    const again = checkpoint<{ n: number }>({
      name: 'job',
      key: { rows: 10, file: 'a.csv' },
      store,
    });
    expect(again.name).toBe(a.name);
    expect(again.name).toMatch(/^job\.[0-9a-f]{12}$/);
    expect(again.restore({ n: 0 })).toEqual({ n: 1 });
    expect(again.info?.key).toBe('{"file":"a.csv","rows":10}');
  });
});

describe('schema versions', () => {
  function savedWithVersion(dir: string, version: number | undefined) {
    const first = checkpoint<{ count: number }>(
      version === undefined ? { name: 'v', dir } : { name: 'v', dir, version },
    );
    first.restore({ count: 0 }).count = 41;
    first.save();
    first.close();
  }

  test('the same version resumes; the version is recorded in info', () => {
    const dir = tempDir();
    savedWithVersion(dir, 1);
    const chp = checkpoint<{ count: number }>({ name: 'v', dir, version: 1 });
    expect(chp.restore({ count: 0 })).toEqual({ count: 41 });
    expect(chp.info?.version).toBe(1);
  });

  test('another version without migrate starts fresh, says so and keeps the old files aside', () => {
    const dir = tempDir();
    savedWithVersion(dir, 1);
    const lines: string[] = [];
    const chp = checkpoint<{ total: number }>({ name: 'v', dir, version: 2 }, lines);
    expect(chp.restore({ total: 0 })).toEqual({ total: 0 });
    expect(chp.restored).toBe(false);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^resumable-state: saved state of "v" is version 1, this code is version 2 and has no migrate\(\); starting fresh \(old files kept as .*v\.ckpt\.version-1-\d{8}T\d{9}Z\)$/,
    );
    chp.save();
    expect(readdirSync(dir).filter((f) => f.startsWith('v.ckpt')).length).toBe(2);
  });

  test("onVersionMismatch: 'error' throws VersionMismatchError and touches nothing", () => {
    const dir = tempDir();
    savedWithVersion(dir, 1);
    const chp = checkpoint({ name: 'v', dir, version: 2, onVersionMismatch: 'error' });
    let caught: unknown;
    try {
      chp.restore({});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(VersionMismatchError);
    expect((caught as VersionMismatchError).code).toBe('CHECKPOINT_VERSION');
    expect((caught as Error).message).toBe(
      `Checkpoint "v" was saved by version 1 of your state; this code is version 2. Pass migrate(old, fromVersion) to convert it, or onVersionMismatch: 'fresh' to start over (${join(dir, 'v.ckpt')})`,
    );
    expect(readdirSync(dir).sort()).toEqual(['v.ckpt', 'v.lock']);
  });

  test('migrate converts the old state, which then continues and is saved with the new version', () => {
    const dir = tempDir();
    savedWithVersion(dir, undefined);
    const seen: unknown[] = [];
    const migrate = (old: unknown, from: string | number | undefined) => {
      seen.push(from);
      return { total: (old as { count: number }).count, unit: 'items' };
    };
    const chp = checkpoint<{ total: number; unit: string; extra: boolean }>(
      { name: 'v', dir, version: '2.0', migrate },
      [],
    );
    const s = chp.restore({ total: 0, unit: '', extra: true });
    expect(s).toEqual({ total: 41, unit: 'items', extra: true });
    expect(seen).toEqual([undefined]);
    s.total += 1;
    chp.save();
    chp.close();
    const again = checkpoint<{ total: number }>({ name: 'v', dir, version: '2.0', migrate });
    expect(again.restore({ total: 0 })).toEqual({ total: 42, unit: 'items', extra: true });
    expect(again.info?.version).toBe('2.0');
    expect(seen).toEqual([undefined]);
  });

  test.each([
    [
      { version: {} },
      'Expected `version` to be a string or a number, got `[object Object]` (object)',
    ],
    [{ migrate: 'x' }, "Expected `migrate` to be a function, got `'x'` (string)"],
    [
      { onVersionMismatch: 'warn' },
      "Expected `onVersionMismatch` to be 'fresh' or 'error', got `'warn'` (string)",
    ],
  ])('%o is rejected with a message naming the option', (options, message) => {
    expect(() => new Checkpoint(options as CheckpointOptions)).toThrow(new TypeError(message));
  });
});

describe('expiry', () => {
  test('state older than expire is ignored, moved aside with a notice, and never overwritten', () => {
    const dir = tempDir();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    const first = checkpoint({ name: 'old', dir });
    first.restore({ a: 1 }).a = 2;
    first.save();
    first.close();
    vi.setSystemTime(new Date('2026-01-02T00:00:01Z'));
    const lines: string[] = [];
    const second = checkpoint({ name: 'old', dir }, lines);
    expect(second.restore({ a: 1 })).toEqual({ a: 1 });
    expect(second.restored).toBe(false);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^resumable-state: saved state of "old" from 1d ago has expired; starting fresh \(old files kept as .*old\.ckpt\.expired-20260102T000001\d+Z\)$/,
    );
    second.save();
    expect(readdirSync(dir).sort()).toEqual([
      'old.ckpt',
      'old.ckpt.expired-20260102T000001000Z',
      'old.lock',
    ]);
  });

  test('expire: false keeps old state valid', () => {
    const store = memoryStore();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2020-01-01T00:00:00Z'));
    const first = checkpoint({ name: 'forever', store });
    first.restore({ a: 1 }).a = 3;
    first.save();
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    expect(checkpoint({ name: 'forever', store, expire: false }).restore({ a: 1 })).toEqual({
      a: 3,
    });
  });
});

describe('names', () => {
  test('unsafe names never leave the folder', () => {
    const parent = tempDir();
    const dir = join(parent, 'inner');
    for (const name of ['../escape', '/etc/passwd', 'a\u0000b', '..', 'sub/dir\\x']) {
      const chp = checkpoint({ name, dir });
      chp.restore({ a: 1 });
      chp.save();
      chp.close();
    }
    expect(readdirSync(parent)).toEqual(['inner']);
    const files = readdirSync(dir).filter((f) => f.endsWith('.ckpt'));
    expect(files).toHaveLength(5);
    for (const f of files) expect(f).toMatch(/^[A-Za-z0-9._-]+$/);
  });

  test('location is the latest file path of the default store', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'placeholder'), '');
    const chp = checkpoint({ name: 'where', dir });
    expect(chp.location).toBe(join(dir, 'where.ckpt'));
  });
});
