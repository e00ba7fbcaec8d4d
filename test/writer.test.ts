import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { unpackCheckpoint } from '../dist/codec/container.js';
import { Checkpoint, StoreError } from '../dist/index.js';
// @ts-expect-error: a plain .mjs fixture without types
import { faultyFileStore } from './fixtures/writer/faulty-store.mjs';

const fixture = (name: string) => new URL(`./fixtures/writer/${name}`, import.meta.url).pathname;
const tempDir = () => mkdtempSync(join(tmpdir(), 'rs-writer-'));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** The saved envelope of `name` in `dir`, read as a second process would. */
function readSaved(dir: string, name: string) {
  const path = join(dir, `${name}.ckpt`);
  return unpackCheckpoint(readFileSync(path), path);
}

function start(args: string[]): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve({ child, stderr: () => err }));
    child.once('exit', (code) => reject(new Error(`child exited early (${code}): ${err}`)));
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries `read` every 50 ms for up to 10 s (the machine may be loaded). */
async function eventually<R>(read: () => R): Promise<R> {
  for (let tries = 0; ; tries++) {
    try {
      return read();
    } catch (err) {
      if (tries >= 200) throw err;
      await sleep(50);
    }
  }
}

describe('background writes', () => {
  test('a busy synchronous loop calling sync() gets its checkpoints written while it spins', async () => {
    const dir = tempDir();
    const { child } = await start([fixture('loop.mjs'), dir, 'busy', '50']);
    const first = await eventually(() => readSaved(dir, 'loop'));
    const second = await eventually(() => {
      const later = readSaved(dir, 'loop');
      if (later.meta.saves <= first.meta.saves) throw new Error('no newer save yet');
      return later;
    });
    expect(child.exitCode).toBeNull(); // still spinning
    expect(second.meta.saves).toBeGreaterThan(first.meta.saves);
    const a = first.envelope.state as { i: number; twice: number };
    const b = second.envelope.state as { i: number; twice: number };
    expect(b.i).toBeGreaterThan(a.i);
    expect(b.twice).toBe(b.i * 2);
  });

  test.each([
    ['ends', 'end', 0],
    ['throws', 'throw', 1],
  ])('a script that calls sync() and then %s leaves its newest state on disk', (_, how, code) => {
    const dir = tempDir();
    const run = spawnSync(process.execPath, [fixture('exit-flush.mjs'), dir, how], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(code);
    const { envelope, meta } = readSaved(dir, 'exit');
    const state = envelope.state as { round: number; data: Float64Array };
    expect(state.round).toBe(3);
    expect(state.data[1_999_999]).toBe(3);
    expect(meta.saves).toBeGreaterThanOrEqual(1);
  });

  test('a failing background write surfaces as StoreError on the next call; the old checkpoint is intact', async () => {
    const dir = tempDir();
    const chp = new Checkpoint<{ n: number }>({
      name: 'faulty',
      store: faultyFileStore(dir),
      interval: 0,
      signals: false,
      log: false,
    });
    const s = chp.restore({ n: 1 });
    chp.save();
    writeFileSync(join(dir, 'FAIL'), '');
    s.n = 2;
    expect(chp.sync()).toBe(true);
    const failure = await chp.flush().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(StoreError);
    const err = failure as InstanceType<typeof StoreError>;
    expect(err.code).toBe('CHECKPOINT_STORE');
    expect(err.message).toBe(
      `Cannot save checkpoint "faulty" at ${join(dir, 'faulty.ckpt')}: ENOSPC: no space left on device, write`,
    );
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect((readSaved(dir, 'faulty').envelope.state as { n: number }).n).toBe(1);

    // Reported once: on the next call after a failure seen only by the background thread.
    s.n = 3;
    expect(chp.sync()).toBe(true);
    let thrown: unknown;
    await chp.flush().catch((e: unknown) => {
      thrown = e;
    });
    expect(thrown).toBeInstanceOf(StoreError);
    expect((readSaved(dir, 'faulty').envelope.state as { n: number }).n).toBe(1);

    // Space is back: the failure was reported once, and saving works again.
    rmSync(join(dir, 'FAIL'));
    s.n = 4;
    expect(chp.sync()).toBe(true);
    await chp.flush();
    expect((readSaved(dir, 'faulty').envelope.state as { n: number }).n).toBe(4);
    s.n = 5;
    chp.save();
    expect((readSaved(dir, 'faulty').envelope.state as { n: number }).n).toBe(5);
    chp.close();
  });
});

describe('failures nobody is left to catch', () => {
  test('a background save failing at exit is said on stderr and makes the exit code 1', () => {
    const dir = tempDir();
    const run = spawnSync(process.execPath, [fixture('exit-fail.mjs'), dir], { encoding: 'utf8' });
    expect(run.stdout).toBe('true\n');
    expect(run.stderr).toMatch(
      /^resumable-state: the last save of "blocked" failed: Cannot save checkpoint "blocked" at .*blocked\.ckpt: EISDIR/,
    );
    expect(run.status).toBe(1);
  });

  test('a failure with a huge message is reported, truncated, and the next save works', async () => {
    const dir = tempDir();
    const name = '実験'.repeat(3000);
    const chp = new Checkpoint<{ n: number }>({
      name,
      store: faultyFileStore(dir),
      interval: 0,
      signals: false,
      log: false,
    });
    const s = chp.restore({ n: 1 });
    writeFileSync(join(dir, 'FAIL'), '');
    chp.sync();
    const failure = await chp.flush().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(StoreError);
    expect((failure as Error).message.startsWith(`Cannot save checkpoint "実験実験`)).toBe(true);
    rmSync(join(dir, 'FAIL'));
    s.n = 2;
    chp.save();
    expect(chp.info?.saves).toBe(2);
    chp.close();
  });

  test('a failure whose message and cause are longer than the report area (a long path) is reported', async () => {
    const root = tempDir();
    const dir = join(root, ...Array.from({ length: 12 }, (_, i) => String(i).padEnd(240, 'd')));
    const chp = new Checkpoint({
      name: 'lp',
      dir,
      interval: 0,
      keep: 1,
      signals: false,
      log: false,
    });
    chp.restore({ x: 1 });
    mkdirSync(chp.location, { recursive: true }); // the rename onto it fails: EISDIR
    expect(chp.sync()).toBe(true);
    const failure = await chp.flush().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(StoreError);
    expect((failure as Error).message).toMatch(/^Cannot save checkpoint "lp" at \/.*…$/);
    expect(((failure as Error).cause as NodeJS.ErrnoException).code).toBe('EISDIR');
  });

  test('checkpoints that are never closed are garbage-collected, signal handling included', () => {
    const run = spawnSync(process.execPath, ['--expose-gc', fixture('unclosed.mjs'), tempDir()], {
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('10\n');
  });

  test('an interval longer than a timer can hold (30 days) is not due after 100 ms', async () => {
    const dir = tempDir();
    const chp = new Checkpoint({ name: 'month', dir, interval: '30d', signals: false, log: false });
    chp.restore({ a: 1 });
    await sleep(100);
    expect(chp.sync()).toBe(false);
    chp.close();
  });
});

describe('signals', () => {
  test("the user's own SIGTERM listener decides: it runs once and the process is not killed", async () => {
    const dir = tempDir();
    const { child } = await start([fixture('user-listener.mjs'), dir]);
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    await sleep(200);
    child.kill('SIGTERM');
    const result = await exited(child);
    expect(result).toEqual({ code: 0, signal: null });
    expect(out).toMatch(/^draining\ndrained at \d+\n$/);
    // Saved at the first sync() after the signal, before the listener's own exit.
    expect(readSaved(dir, 'own').meta.saves).toBe(1);
  });

  test.each([
    ['SIGTERM', 'async', 143],
    ['SIGINT', 'async', 130],
    ['SIGTERM', 'busy', 143],
    ['SIGINT', 'busy', 130],
    ['SIGHUP', 'busy', 129],
  ] as const)(
    '%s during a loop (%s) saves the state at the next sync() and exits with %i',
    async (signal, mode, code) => {
      const dir = tempDir();
      const { child, stderr } = await start([fixture('loop.mjs'), dir, mode, '3600000']);
      await sleep(300);
      child.kill(signal);
      const result = await exited(child);
      expect(result).toEqual({ code, signal: null });
      expect(stderr()).toMatch(/resumable-state: saved "loop" on signal \(save #1\)/);
      const { envelope, meta } = readSaved(dir, 'loop');
      const state = envelope.state as { i: number; twice: number };
      expect(meta.saves).toBe(1); // the interval is an hour: this save is the signal's
      expect(state.i).toBeGreaterThan(0);
      expect(state.twice).toBe(state.i * 2);
      if (mode === 'async') expect(state.i % 1000).toBe(0); // saved at a sync(), a step boundary
    },
  );

  test.each(['SIGTERM', 'SIGINT'] as const)(
    '%s during a busy loop that never calls sync() ends the process within 2 s, keeping the last save',
    async (signal) => {
      const dir = tempDir();
      const { child } = await start([fixture('loop.mjs'), dir, 'busy-nosync']);
      await sleep(200);
      const sent = Date.now();
      child.kill(signal);
      const result = await exited(child);
      expect(Date.now() - sent).toBeLessThan(2000);
      expect(result).toEqual({ code: null, signal });
    },
  );

  test('SIGTERM after the last step boundary, while the program is finishing, still exits 143', async () => {
    const { child } = await start([fixture('late-signal.mjs'), tempDir()]);
    await sleep(150); // the watcher runs (before it, SIGTERM kills outright: fine too)
    child.kill('SIGTERM');
    const result = await exited(child);
    // Never a clean exit 0: the signal was swallowed before this was fixed.
    expect([143, 'SIGTERM']).toContain(result.code ?? result.signal);
  });

  test('signals: false installs nothing: SIGTERM ends the process at once without saving', async () => {
    const dir = tempDir();
    const script = `
      import { Checkpoint } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const chp = new Checkpoint({ name: 'nosig', dir: ${JSON.stringify(dir)}, signals: false, interval: 3600000 });
      const s = chp.restore({ i: 0 });
      process.stdout.write('ready\\n');
      for (;;) { s.i++; chp.sync(); }
    `;
    const { child } = await start(['--input-type=module', '-e', script]);
    const sent = Date.now();
    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: null, signal: 'SIGTERM' });
    expect(Date.now() - sent).toBeLessThan(500);
    expect(() => readSaved(dir, 'nosig')).toThrow(/ENOENT/);
  });
});
