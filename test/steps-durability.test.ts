/**
 * Durable steps (#11.6): a SIGTERM in the middle of a once() batch starts no new call,
 * keeps every resolved result and ends the process with 128 + signal at once; on a full
 * disk every pending step settles with StoreError.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Checkpoint, fileStore, StoreError } from '../dist/index.js';
import { JournalWriter } from '../dist/journal-writer.js';
import { cleanedAfterEach } from './helpers.js';

const { children, open, tempDir } = cleanedAfterEach('rs-steps-');
const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/steps/${name}`, import.meta.url));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `script` with `args`; resolves when it exits (killed after `timeoutMs`). */
function run(script: string, args: string[], timeoutMs = 30_000) {
  const child = spawn(process.execPath, [fixture(script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { child, exited };
}

describe('SIGTERM during a once() batch (#11.6a)', () => {
  const ITEMS = 2000;
  const CONCURRENCY = 64;
  /** Calls answered before the server starts holding answers back, then signals the job. */
  const SIGNAL_AFTER = 600;

  it('starts no call after the signal, exits 143 at once, and no resolved result is paid for again', async () => {
    const dir = tempDir();
    const resolvedFile = join(dir, 'resolved.txt');
    // The paid API: counts calls per key. Once SIGNAL_AFTER calls are answered it holds
    // the next answers back; when all CONCURRENCY workers wait on it, no request is in
    // transit, so any request arriving after the signal is a call started after it.
    const calls = new Map<string, number>();
    let arrivals = 0;
    let answered = 0;
    let holding = false;
    const held: ServerResponse[] = [];
    let allHeld!: () => void;
    const workersBlocked = new Promise<void>((resolve) => (allHeld = resolve));
    const server = createServer((req, res) => {
      const key = req.url!.slice(1);
      calls.set(key, (calls.get(key) ?? 0) + 1);
      arrivals++;
      if (holding) {
        held.push(res);
        if (held.length === CONCURRENCY) allHeld();
        return;
      }
      res.end(`answer to ${key}`);
      if (++answered === SIGNAL_AFTER) holding = true;
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = String((server.address() as AddressInfo).port);
    const args = [port, dir, resolvedFile, String(ITEMS), String(CONCURRENCY)];

    const first = run('http-batch.mjs', args);
    await workersBlocked;
    const arrivalsAtSignal = arrivals;
    first.child.kill('SIGTERM');
    const signalledAt = performance.now();
    // The calls in flight finish after the signal (their answers were paid for already).
    await new Promise((r) => setTimeout(r, 100));
    holding = false;
    for (const res of held.splice(0)) res.end('late answer');
    const exit = await first.exited;
    const exitMs = performance.now() - signalledAt;
    expect({ code: exit.code, signal: exit.signal, stderr: exit.stderr }).toEqual({
      code: 143,
      signal: null,
      stderr: '',
    });
    expect(arrivals - arrivalsAtSignal).toBe(0);
    // "At once": the job ends when its last call in flight is recorded (generous bound for
    // a loaded machine; the old code went on for a full second, starting ~900 calls).
    expect(exitMs).toBeLessThan(5000);
    const resolvedBefore = readFileSync(resolvedFile, 'utf8').trim().split('\n');
    expect(resolvedBefore.length).toBeGreaterThanOrEqual(SIGNAL_AFTER);

    const callsBefore = new Map(calls);
    const second = await run('http-batch.mjs', args).exited;
    expect({ code: second.code, stdout: second.stdout, stderr: second.stderr }).toEqual({
      code: 0,
      stdout: `done ${ITEMS}\n`,
      stderr: '',
    });
    const paidAgain = resolvedBefore.filter((key) => calls.get(key) !== callsBefore.get(key));
    expect(paidAgain).toEqual([]);
    // Stronger: the calls in flight at the signal were recorded too, so no key was paid twice.
    expect(calls.size).toBe(ITEMS);
    expect([...calls].filter(([, n]) => n !== 1)).toEqual([]);
  }, 60_000);
});

describe('durable steps on a full disk (#11.6c)', () => {
  const mounted: string[] = [];
  afterEach(() => {
    for (const dir of mounted.splice(0)) {
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** A 1 MiB tmpfs, or undefined where this process may not mount one (not root). */
  function smallDisk(): string | undefined {
    const dir = mkdtempSync(join(tmpdir(), 'rs-steps-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    } catch {
      rmSync(dir, { recursive: true, force: true });
      return undefined;
    }
    mounted.push(dir);
    return dir;
  }

  it('a step recorded from a callback of the batch that just landed or failed still settles', async () => {
    for (const firstFails of [false, true]) {
      let appends = 0;
      const sink = {
        async append() {
          if (++appends === 1 && firstFails) throw new Error('ENOSPC: no space left on device');
        },
        appendSync() {},
      };
      const writer = new JournalWriter(() => sink, 100, { failed() {}, idle() {} });
      const first = writer.add(new Uint8Array(8), true, () => {});
      // Runs before the writer has noticed that its flush loop ended.
      const next = () => writer.add(new Uint8Array(8), true, () => {});
      const second = first.then(next, next);
      const outcome = await Promise.race([
        second.then(() => 'written'),
        new Promise((r) => setTimeout(() => r('never settled'), 2000)),
      ]);
      expect({ firstFails, outcome, appends }).toEqual({
        firstFails,
        outcome: 'written',
        appends: 2,
      });
      writer.close();
    }
  });

  it('a Promise.all batch on a tmpfs that fills: every step settles, the rest with StoreError, exit 1', async (ctx) => {
    const dir = smallDisk();
    if (dir === undefined) return ctx.skip();
    const { code, stdout, stderr } = await run('full-disk.mjs', [dir, '2000', '40000']).exited;
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      outcomes: Record<string, number>;
      settleMs: number;
    };
    expect(code).toBe(1);
    expect(stdout).not.toContain('finished');
    expect(stderr).toContain('StoreError');
    const { ok = 0, ...failed } = summary.outcomes;
    expect(ok).toBeGreaterThan(0);
    expect(failed).toEqual({ 'StoreError/CHECKPOINT_STORE': 2000 - ok });
    // "Promptly": every step settled within a few seconds of the first failure.
    expect(summary.settleMs).toBeLessThan(5000);
  });

  it('an injected journal whose appends fail after the first: every pending step rejects with StoreError', async () => {
    const dir = tempDir();
    const files = fileStore(dir);
    let appends = 0;
    const journal = {
      ...files.journal!,
      create(name: string, epoch: number) {
        const file = files.journal!.create(name, epoch);
        const full = () => {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
            code: 'ENOSPC',
          });
        };
        return {
          ...file,
          async append(bytes: Uint8Array) {
            if (++appends > 1) full();
            return file.append(bytes);
          },
          appendSync: full,
        };
      },
    };
    const chp = new Checkpoint({
      name: 'full',
      store: { ...files, journal },
      durable: 'step',
      log: false,
    });
    open.push(chp);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 500 }, (_, i) =>
        chp.once(`k${i}`, () => new Promise((r) => setTimeout(() => r(i), i % 25))),
      ),
    );
    const failed = outcomes.filter((o) => o.status === 'rejected');
    expect(outcomes.length - failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeGreaterThan(400);
    for (const { reason } of failed) {
      expect(reason).toBeInstanceOf(StoreError);
      expect((reason as StoreError).code).toBe('CHECKPOINT_STORE');
      expect((reason as StoreError).message).toBe(
        'Cannot append to the step journal: ENOSPC: no space left on device, write',
      );
    }
    expect(chp.stats()).toEqual({ done: outcomes.length - failed.length, failed: 0, pending: 0 });
  });
});
