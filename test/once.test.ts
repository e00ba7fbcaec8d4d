/**
 * chp.once(): memoized steps recorded in a journal. Results come back with their types in
 * this run and the next; keys running share one execution; failures are recorded, listed,
 * retried; the journal is folded into the snapshot by save(); a torn or damaged last record
 * is dropped and nothing before it; 'step' results are on disk before once() resolves.
 */

import { spawn } from 'node:child_process';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Checkpoint,
  CheckpointClosedError,
  CheckpointError,
  type CheckpointOptions,
  fileStore,
  memoryStore,
  SerializationError,
  StoreError,
} from '../dist/index.js';
import { parseJournal } from '../dist/journal.js';

const made: string[] = [];
const open: Checkpoint[] = [];

afterEach(() => {
  for (const chp of open.splice(0)) chp.close();
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rs-once-'));
  made.push(dir);
  return dir;
}

function checkpoint(dir: string, options: CheckpointOptions = {}): Checkpoint {
  const chp = new Checkpoint({ name: 'batch', dir, log: false, signals: false, ...options });
  open.push(chp);
  return chp;
}

/** Closes `chp` and opens the same checkpoint again, as the next run would. */
function reopen(chp: Checkpoint, dir: string, options: CheckpointOptions = {}): Checkpoint {
  chp.close();
  open.splice(open.indexOf(chp), 1);
  return checkpoint(dir, options);
}

const journals = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.includes('.journal-'))
    .sort();
const records = (dir: string, file: string) =>
  parseJournal(readFileSync(join(dir, file))).records.map((r) => r.key);

describe('once()', () => {
  it('runs fn the first time and returns the recorded result ever after, with its types', async () => {
    const dir = tempDir();
    let calls = 0;
    const value = () => {
      calls++;
      return { at: new Date(5), m: new Map([[1, 'a']]), f: new Float64Array([1.5, -0]), n: 10n };
    };
    let chp = checkpoint(dir);
    const first = await chp.once('k', value);
    expect(await chp.once('k', value)).toBe(first);
    chp = reopen(chp, dir);
    const again = await chp.once('k', value);
    expect(calls).toBe(1);
    expect(again).toEqual({
      at: new Date(5),
      m: new Map([[1, 'a']]),
      f: new Float64Array([1.5, -0]),
      n: 10n,
    });
    expect(Object.is(again.f[1], -0)).toBe(true);
    expect(chp.stats()).toEqual({ done: 1, failed: 0, pending: 0 });
  });

  it('awaits async functions and keeps undefined and null results as results', async () => {
    const dir = tempDir();
    let chp = checkpoint(dir);
    expect(await chp.once('u', async () => undefined)).toBe(undefined);
    expect(await chp.once('n', () => null)).toBe(null);
    chp = reopen(chp, dir);
    let calls = 0;
    expect(await chp.once('u', () => ++calls)).toBe(undefined);
    expect(await chp.once('n', () => ++calls)).toBe(null);
    expect(calls).toBe(0);
  });

  it('10,000 calls 64 at a time, every key twice at once: each fn runs exactly once', async () => {
    const dir = tempDir();
    const chp = checkpoint(dir, { durable: 'step' });
    const calls = new Map<number, number>();
    const keys = Array.from({ length: 10_000 }, (_, i) => Math.floor(i / 2));
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const k = keys[next++]!;
        const v = await chp.once(`item:${k}`, async () => {
          calls.set(k, (calls.get(k) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          return k * 3;
        });
        expect(v).toBe(k * 3);
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    expect(calls.size).toBe(5000);
    expect([...calls.values()].every((n) => n === 1)).toBe(true);
    expect(chp.stats()).toEqual({ done: 5000, failed: 0, pending: 0 });
    // Group commit: far fewer flushes than records, and every record on disk once.
    const [file] = journals(dir);
    expect(records(dir, file!)).toHaveLength(5000);
  });

  it('a throwing step is recorded as failed, listed, rethrown, and run again next time', async () => {
    const dir = tempDir();
    let chp = checkpoint(dir);
    class QuotaError extends Error {
      code = 'E_QUOTA';
    }
    const boom = () => {
      throw new QuotaError('over quota');
    };
    await expect(chp.once('a', boom)).rejects.toThrow(new QuotaError('over quota'));
    await chp.once('b', () => 1);
    expect(chp.failed()).toEqual(['a']);
    expect(chp.stats()).toEqual({ done: 1, failed: 1, pending: 0 });
    await chp.flush();
    const recorded = parseJournal(readFileSync(join(dir, journals(dir)[0]!))).records;
    expect(recorded[0]).toEqual({
      key: 'a',
      ok: false,
      error: { name: 'Error', message: 'over quota', code: 'E_QUOTA' },
      attempts: 1,
    });
    chp = reopen(chp, dir);
    expect(chp.failed()).toEqual(['a']);
    let release!: () => void;
    const running = chp.once('a', () => new Promise<number>((r) => (release = () => r(7))));
    expect(chp.stats()).toEqual({ done: 1, failed: 0, pending: 1 });
    expect(chp.failed()).toEqual([]);
    await new Promise((r) => setTimeout(r, 1));
    release();
    expect(await running).toBe(7);
    expect(chp.stats()).toEqual({ done: 2, failed: 0, pending: 0 });
  });

  it('retries with backoff (per checkpoint, or per call) and counts attempts across runs', async () => {
    const dir = tempDir();
    const chp = checkpoint(dir, { retries: 2, retryDelay: 1 });
    let calls = 0;
    const flaky = () => {
      if (++calls < 3) throw new Error(`try ${calls}`);
      return 'ok';
    };
    expect(await chp.once('f', flaky)).toBe('ok');
    expect(calls).toBe(3);
    calls = 0;
    await expect(chp.once('g', flaky, { retries: 1, retryDelay: 1 })).rejects.toThrow('try 2');
    expect(calls).toBe(2);
    await chp.flush();
    const recorded = parseJournal(readFileSync(join(dir, journals(dir)[0]!))).records;
    expect(recorded.map((r) => [r.key, r.ok, r.attempts])).toEqual([
      ['f', true, 3],
      ['g', false, 2],
    ]);
    expect(await chp.once('g', () => 'later')).toBe('later');
    await chp.flush();
    const last = parseJournal(readFileSync(join(dir, journals(dir)[0]!))).records.at(-1);
    expect(last).toEqual({ key: 'g', ok: true, value: 'later', attempts: 3 });
  });

  it("durable 'step': the record is on disk when once() resolves", async () => {
    const dir = tempDir();
    const chp = checkpoint(dir, { durable: 'step', batchDelay: '1h' });
    await chp.once('s', () => 1);
    expect(records(dir, journals(dir)[0]!)).toEqual(['s']);
  });

  it("by default (durable 'step', #11.6b) a resolved once() is already on disk", async () => {
    const dir = tempDir();
    const chp = checkpoint(dir, { batchDelay: '1h' });
    await chp.once('d', () => 1);
    expect(records(dir, journals(dir)[0]!)).toEqual(['d']);
  });

  it("durable 'batched': once() resolves first; flush() or batchDelay writes the record", async () => {
    const dir = tempDir();
    const chp = checkpoint(dir, { durable: 'batched', batchDelay: '1h' });
    await chp.once('b1', () => 1);
    expect(journals(dir)).toEqual([]);
    await chp.flush();
    expect(records(dir, journals(dir)[0]!)).toEqual(['b1']);
    const quick = checkpoint(tempDir(), { name: 'quick', durable: 'batched', batchDelay: 20 });
    await quick.once('b2', () => 2);
    await new Promise((r) => setTimeout(r, 300));
    const quickDir = quick.location.replace(/quick\.ckpt$/, '');
    expect(records(quickDir, journals(quickDir)[0]!)).toEqual(['b2']);
  });

  it('close() writes batched records; the next run has them', async () => {
    const dir = tempDir();
    let chp = checkpoint(dir, { durable: 'batched', batchDelay: '1h' });
    await chp.once('c', () => 'v');
    chp = reopen(chp, dir);
    let called = false;
    expect(await chp.once('c', () => (called = true))).toBe('v');
    expect(called).toBe(false);
  });

  it('save() folds the journal into the snapshot; older journals go one fold later', async () => {
    const dir = tempDir();
    let chp = checkpoint(dir, { durable: 'step' });
    const state = chp.restore({ n: 0 });
    await chp.once('a', () => 1);
    chp.save();
    expect(journals(dir).map((f) => records(dir, f))).toEqual([['a']]);
    await chp.once('b', () => 2);
    state.n = 1;
    chp.save();
    expect(journals(dir).map((f) => records(dir, f))).toEqual([['b']]);
    await chp.once('c', () => 3);
    expect(journals(dir).map((f) => records(dir, f))).toEqual([['b'], ['c']]);
    expect(journals(dir)[0]).toMatch(/^batch\.ckpt\.journal-\d{13}$/);
    chp = reopen(chp, dir);
    expect(chp.restore({ n: 5 })).toEqual({ n: 1 });
    const seen: string[] = [];
    for (const k of ['a', 'b', 'c', 'd']) await chp.once(k, () => seen.push(k));
    expect(seen).toEqual(['d']);
    expect(chp.stats()).toEqual({ done: 4, failed: 0, pending: 0 });
  });

  it('once() before restore() loads the saved steps and restore() still gets its state', async () => {
    const dir = tempDir();
    let chp = checkpoint(dir);
    chp.restore({ n: 0 });
    await chp.once('a', () => 1);
    chp.save({ n: 3 });
    chp = reopen(chp, dir);
    expect(await chp.once('a', () => 2)).toBe(1);
    expect(chp.restore({ n: 0 })).toEqual({ n: 3 });
    expect(chp.restored).toBe(true);
  });

  it('on a store without a journal, steps are saved with the state (after restore())', async () => {
    const { journal: _, ...store } = memoryStore();
    const options = { name: 'm', store, log: false, signals: false, durable: 'step' } as const;
    let chp = new Checkpoint(options);
    open.push(chp);
    await expect(chp.once('x', () => 'y')).rejects.toThrow(
      new CheckpointError(
        'once() needs restore(initial) first on a store without a journal (memory:m): its steps are saved with the state',
      ),
    );
    chp.restore({ n: 42 });
    expect(await chp.once('x', () => 'y')).toBe('y');
    chp = reopen(chp, '', options);
    expect(chp.restore({ n: 0 })).toEqual({ n: 42 });
    expect(await chp.once('x', () => 'z')).toBe('y');
    expect(chp.stats()).toEqual({ done: 1, failed: 0, pending: 0 });
  });

  it('clear() after restore() forgets the restored steps too', async () => {
    const dir = tempDir();
    let chp = checkpoint(dir);
    chp.restore({});
    await chp.once('a', () => 1);
    chp.save();
    chp = reopen(chp, dir);
    chp.restore({});
    chp.clear();
    expect(await chp.once('a', () => 2)).toBe(2);
  });

  it('a failed append loses only its records, which run again; later ones go to a new journal', async () => {
    const dir = tempDir();
    const files = fileStore(dir);
    let failNext = false;
    const journal = {
      ...files.journal!,
      create(name: string, epoch: number) {
        const file = files.journal!.create(name, epoch);
        return {
          ...file,
          async append(bytes: Uint8Array) {
            if (failNext) {
              failNext = false;
              await file.append(bytes.subarray(0, 5)); // torn bytes, then the error
              throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
            }
            return file.append(bytes);
          },
        };
      },
    };
    let chp = checkpoint(dir, { store: { ...files, journal }, durable: 'step' });
    await chp.once('a', () => 1);
    failNext = true;
    const err = await chp.once('b', () => 2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).message).toBe(
      'Cannot append to the step journal: ENOSPC: no space left on device',
    );
    expect(chp.stats()).toEqual({ done: 1, failed: 0, pending: 0 });
    expect(await chp.once('c', () => 3)).toBe(3);
    expect(await chp.once('b', () => 4)).toBe(4);
    expect(journals(dir)).toHaveLength(2);
    chp = reopen(chp, dir);
    const ran: string[] = [];
    for (const k of ['a', 'b', 'c']) await chp.once(k, () => ran.push(k));
    expect(ran).toEqual([]);
    expect(await chp.once('b', () => 5)).toBe(4);
  });

  it('close() reports a batched flush that failed', async () => {
    const dir = tempDir();
    const files = fileStore(dir);
    const journal = {
      ...files.journal!,
      create: () => ({
        append: async () => {
          throw new Error('EIO: i/o error');
        },
        appendSync() {
          throw new Error('EIO: i/o error');
        },
        close() {},
      }),
    };
    const chp = checkpoint(dir, {
      store: { ...files, journal },
      durable: 'batched',
      batchDelay: 1,
    });
    await chp.once('a', () => 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(() => chp.close()).toThrow(
      new StoreError('Cannot append to the step journal: EIO: i/o error'),
    );
  });

  it('a step still running at close() is not recorded after it', async () => {
    const dir = tempDir();
    const chp = checkpoint(dir, { durable: 'step' });
    let release!: () => void;
    const running = chp.once('slow', () => new Promise<number>((r) => (release = () => r(1))));
    await new Promise((r) => setTimeout(r, 1));
    chp.close();
    release();
    await expect(running).rejects.toThrow(
      new CheckpointClosedError('The checkpoint is closed: the step was not recorded'),
    );
    expect(journals(dir)).toEqual([]);
  });

  it('steps journaled after an old save keep the checkpoint from expiring', async () => {
    const dir = tempDir();
    let chp = checkpoint(dir, { durable: 'step' });
    chp.restore({ n: 1 });
    chp.save();
    // The save becomes older than `expire`; the journal is written just before the restart.
    await new Promise((r) => setTimeout(r, 1200));
    await chp.once('fresh', () => 1);
    chp = reopen(chp, dir, { expire: 1000 });
    expect(chp.restore({ n: 0 })).toEqual({ n: 1 });
    expect(await chp.once('fresh', () => 2)).toBe(1);
  });

  it('a corrupt latest generation falls back to the previous one with its steps', async () => {
    const dir = tempDir();
    let chp = checkpoint(dir, { durable: 'step', interval: 0 });
    chp.restore({ n: 0 });
    await chp.once('a', () => 1);
    chp.sync({ n: 1 });
    await chp.flush();
    await chp.once('b', () => 2);
    chp.save({ n: 2 });
    chp.close();
    open.splice(open.indexOf(chp), 1);
    const latest = readFileSync(join(dir, 'batch.ckpt'));
    latest[latest.byteLength - 12] = latest[latest.byteLength - 12]! ^ 1;
    writeFileSync(join(dir, 'batch.ckpt'), latest);
    chp = checkpoint(dir);
    expect(chp.restore({ n: 0 })).toEqual({ n: 1 });
    const ran: string[] = [];
    for (const k of ['a', 'b']) await chp.once(k, () => ran.push(k));
    expect(ran).toEqual([]);
  });

  it('clear() forgets every step', async () => {
    const dir = tempDir();
    let chp = checkpoint(dir, { durable: 'step' });
    await chp.once('a', () => 1);
    chp.clear();
    expect(journals(dir)).toEqual([]);
    expect(chp.stats()).toEqual({ done: 0, failed: 0, pending: 0 });
    expect(await chp.once('a', () => 2)).toBe(2);
    chp = reopen(chp, dir);
    expect(await chp.once('a', () => 3)).toBe(2);
  });

  it('enabled: false runs fn every time and records nothing', async () => {
    const dir = tempDir();
    const chp = checkpoint(dir, { enabled: false });
    let calls = 0;
    await chp.once('a', () => ++calls);
    await chp.once('a', () => ++calls);
    expect(calls).toBe(2);
    expect(chp.stats()).toEqual({ done: 0, failed: 0, pending: 0 });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('rejects bad arguments, unstorable results and use after close, with exact errors', async () => {
    const dir = tempDir();
    const chp = checkpoint(dir);
    await expect(chp.once('', () => 1)).rejects.toThrow(
      new TypeError("Expected `key` to be a non-empty string, got ''"),
    );
    await expect(chp.once(7 as unknown as string, () => 1)).rejects.toThrow(
      new TypeError('Expected `key` to be a non-empty string, got `7` (number)'),
    );
    await expect(chp.once('k', 'no' as unknown as () => 1)).rejects.toThrow(
      new TypeError("Expected `fn` to be a function, got 'no'"),
    );
    await expect(chp.once('k', () => 1, { retries: -1 })).rejects.toThrow(
      new RangeError(
        'Expected `options.retries` to be an integer from 0 to 1000, got `-1` (number)',
      ),
    );
    await expect(
      chp.once('k', () => 1, { durability: 'step' } as unknown as { durable: 'step' }),
    ).rejects.toThrow(new TypeError('Unknown option `options.durability`'));
    await expect(chp.once('k', () => 1, { durable: 'always' as 'step' })).rejects.toThrow(
      new TypeError(
        "Expected `options.durable` to be 'step' or 'batched', got `'always'` (string)",
      ),
    );
    const err = await chp.once('fn', () => ({ cb: () => 1 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerializationError);
    expect((err as SerializationError).path).toBe('once("fn").cb');
    expect((err as SerializationError).message).toBe(
      'The result of once("fn") cannot be stored: Cannot store `once("fn").cb`: it is a function (cb)',
    );
    expect(chp.stats()).toEqual({ done: 0, failed: 0, pending: 0 });
    chp.close();
    await expect(chp.once('k', () => 1)).rejects.toThrow(
      new CheckpointClosedError(
        'Checkpoint "batch" is closed, so once() cannot run: it no longer owns its files. Open a new Checkpoint with the same name to continue from what it saved',
      ),
    );
  });
});

describe('batched results and signals', () => {
  it('SIGTERM to an idle job writes its batched results before the process ends', async () => {
    const dir = tempDir();
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('./fixtures/once/idle.mjs', import.meta.url)), dir],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((resolve) => child.stdout.once('data', resolve));
    // The background thread starts watching signals within a few ms of the checkpoint.
    await new Promise((r) => setTimeout(r, 500));
    expect(journals(dir)).toEqual([]);
    const exited = new Promise<[number | null, string | null]>((resolve) =>
      child.on('exit', (code, signal) => resolve([code, signal])),
    );
    child.kill('SIGTERM');
    expect(await exited).toEqual([null, 'SIGTERM']);
    expect(records(dir, journals(dir)[0]!)).toEqual(Array.from({ length: 100 }, (_, i) => `k${i}`));
  });
});

describe('a torn or damaged journal tail', () => {
  async function journalOf(count: number): Promise<{ dir: string; file: string; last: number }> {
    const dir = tempDir();
    const chp = checkpoint(dir, { durable: 'step' });
    for (let i = 0; i < count; i++) await chp.once(`k${i}`, () => ({ i, text: 'x'.repeat(i) }));
    chp.close();
    open.splice(open.indexOf(chp), 1);
    const file = join(dir, journals(dir)[0]!);
    const bytes = readFileSync(file);
    // Where the last record starts: the end of the journal holding all but it.
    let last = bytes.byteLength;
    while (parseJournal(bytes.subarray(0, last)).records.length === count) last--;
    while (parseJournal(bytes.subarray(0, last)).dropped !== undefined) last--;
    return { dir, file, last };
  }

  it('truncated at every byte of its last record: loads all records before it', async () => {
    const { dir, file, last } = await journalOf(5);
    const whole = readFileSync(file);
    expect(whole.byteLength - last).toBeGreaterThan(20);
    for (let cut = last; cut < whole.byteLength; cut++) {
      writeFileSync(file, whole.subarray(0, cut));
      const lines: string[] = [];
      const chp = checkpoint(dir, { log: (l) => lines.push(l) });
      const ran: string[] = [];
      for (let i = 0; i < 5; i++) await chp.once(`k${i}`, () => ran.push(`k${i}`));
      expect(ran).toEqual(['k4']);
      expect(lines).toEqual(
        cut === last
          ? []
          : [
              expect.stringMatching(
                new RegExp(
                  `^resumable-state: dropped a torn record(?: head)? at byte ${last} in ${file.replace(/[.]/g, '\\.')} \\(4 records before it kept\\)$`,
                ),
              ),
            ],
      );
      chp.clear();
      chp.close();
      open.splice(open.indexOf(chp), 1);
    }
  });

  it('a flipped bit in the last record drops it alone', async () => {
    const { dir, file } = await journalOf(3);
    const bytes = readFileSync(file);
    bytes[bytes.byteLength - 3] = bytes[bytes.byteLength - 3]! ^ 0x10;
    writeFileSync(file, bytes);
    const lines: string[] = [];
    const chp = checkpoint(dir, { log: (l) => lines.push(l) });
    expect(chp.stats()).toEqual({ done: 2, failed: 0, pending: 0 });
    expect(lines).toEqual([expect.stringContaining('dropped a record failing its checksum')]);
  });

  it('a later run appends to a new journal, never after the torn bytes', async () => {
    const { dir, file, last } = await journalOf(2);
    truncateSync(file, last + 3);
    const chp = checkpoint(dir, { durable: 'step' });
    await chp.once('new', () => 1);
    expect(journals(dir)).toHaveLength(2);
    expect(join(dir, journals(dir)[0]!)).toBe(file);
    expect(readFileSync(file).byteLength).toBe(last + 3);
  });
});
