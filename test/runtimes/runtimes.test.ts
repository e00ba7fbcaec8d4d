/**
 * The runtime subset on every Node version given (#12.4): primes, every type round-trip,
 * background saves from a busy loop, signals in busy loops, the kill test and the CLI, each
 * in child processes of that version; and the cross-version matrix: a checkpoint written by
 * each version restores, every type intact, on every other.
 *
 * Run by `npm run test:runtimes` (scripts/runtimes.mjs installs Node 22, 24 and 26 from npm).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { unpackCheckpoint } from '../../dist/codec/container.js';
import { Random } from '../../dist/index.js';
import { cleanedAfterEach } from '../helpers.js';
import { runtimes } from './runtimes.js';

const { children, tempDir } = cleanedAfterEach('rs-runtimes-');
const fixture = (path: string) => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const all = runtimes();

/** The saved metadata and state of `name` in `dir`, or undefined while there is none. */
function saved(dir: string, name: string) {
  const path = join(dir, `${name}.ckpt`);
  try {
    const { meta, envelope } = unpackCheckpoint(readFileSync(path), path);
    return { meta, state: envelope.state as Record<string, number> };
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Starts `bin args`, resolving once it printed its first line. */
function started(bin: string, args: string[]): Promise<{ child: ChildProcess; err: () => string }> {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve({ child, err: () => err }));
    child.once('exit', (code) => reject(new Error(`exited early (${code}): ${err}`)));
  });
}

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

/** Retries `read` every 50 ms until it returns something, for up to 20 s (loaded machine). */
async function eventually<R>(read: () => R | undefined): Promise<R> {
  for (let tries = 0; ; tries++) {
    const value = read();
    if (value !== undefined) return value;
    if (tries >= 400) throw new Error('still nothing after 20 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the round-trip fixture prints after restoring what `writer` saved, read by `reader`. */
function roundTrip(writer: string, reader: string, variant = 'all'): string {
  const dir = tempDir();
  execFileSync(writer, [fixture('roundtrip.mjs'), dir, 'save', variant]);
  return execFileSync(reader, [fixture('roundtrip.mjs'), dir, 'load', variant], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe.each(all)('Node $major', ({ bin }) => {
  test('the primes example continues across two processes', () => {
    const env = { ...process.env, RESUME_DIR: tempDir() };
    const run = (n: string) =>
      execFileSync(bin, [fixture('primes.mjs'), n], { encoding: 'utf8', env });
    expect(run('10')).toBe('2 3 5 7 11 13 17 19 23 29 31\n');
    expect(run('5')).toBe('2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53\n');
  });

  test('every type round-trips exactly as on the Node running the tests', () => {
    const out = roundTrip(bin, bin);
    expect(JSON.parse(out)).toEqual(JSON.parse(roundTrip(process.execPath, process.execPath)));
    expect(JSON.parse(out).restored).toBe(true);
  });

  test('a busy synchronous loop gets its saves written in the background while it spins', async () => {
    const dir = tempDir();
    const { child, err } = await started(bin, [fixture('writer/loop.mjs'), dir, 'busy', '50']);
    // Several saves land while the main thread never yields.
    const later = await eventually(() => {
      const s = saved(dir, 'loop');
      return s !== undefined && s.meta.saves >= 3 ? s : undefined;
    });
    expect(later.state.twice).toBe(later.state.i! * 2);
    child.kill('SIGKILL');
    await exited(child);
    expect(err()).toBe('');
  });

  test.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)(
    '%s in a busy synchronous loop saves the state and exits with %i',
    async (signal, code) => {
      const dir = tempDir();
      const args = [fixture('writer/loop.mjs'), dir, 'busy', String(3_600_000)];
      const { child, err } = await started(bin, args);
      const result = exited(child);
      child.kill(signal);
      expect(await result).toEqual({ code, signal: null });
      expect(err()).toBe('resumable-state: saved "loop" on signal (save #1)\n');
      const { meta, state } = saved(dir, 'loop')!;
      expect(meta.saves).toBe(1); // the interval is an hour: this save is the signal's
      expect(state.i).toBeGreaterThan(0);
      expect(state.twice).toBe(state.i! * 2);
    },
  );

  test('killed at random (SIGKILL) and restarted, it ends with the uninterrupted result', async () => {
    const run = (dir: string, killAfter?: number) =>
      new Promise<{ out: string; code: number | null }>((resolve) => {
        const child = spawn(bin, [fixture('exact/compute.mjs'), dir, 'random', '6000'], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        children.push(child);
        let out = '';
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (d: string) => {
          if (
            killAfter !== undefined &&
            !out.includes('start ') &&
            `${out}${d}`.includes('start ')
          ) {
            setTimeout(() => child.kill('SIGKILL'), killAfter);
          }
          out += d;
        });
        child.on('close', (code) => resolve({ out, code }));
      });
    const reference = await run(tempDir());
    expect(reference.code).toBe(0);
    const dir = tempDir();
    const random = new Random(Date.now() % 1_000_000).next;
    let last = { out: '', code: null as number | null };
    for (let kill = 0; kill < 5; kill++) last = await run(dir, 20 + Math.floor(random() * 200));
    while (last.code !== 0) last = await run(dir);
    const result = (r: { out: string }) => r.out.split('\n').find((l) => l.startsWith('result '));
    expect(result(last)).toBe(result(reference));
  });

  test('the CLI lists and shows a checkpoint', () => {
    const env = { ...process.env, RESUME_DIR: tempDir() };
    execFileSync(bin, [fixture('primes.mjs'), '10'], { env });
    const list = spawnSync(bin, [CLI, 'list', env.RESUME_DIR], { encoding: 'utf8' });
    expect(list.status).toBe(0);
    expect(list.stdout).toContain('primes.computePrimes');
    const show = spawnSync(bin, [CLI, 'show', 'primes.computePrimes', '--dir', env.RESUME_DIR], {
      encoding: 'utf8',
    });
    expect(show.status).toBe(0);
    expect(show.stdout).toContain('candidate');
  });
});

describe('cross-version restore', () => {
  const reference = JSON.parse(roundTrip(process.execPath, process.execPath)) as unknown;
  const noCause = JSON.parse(roundTrip(process.execPath, process.execPath, 'no-cause')) as unknown;
  const pairs = all.flatMap((w) => all.map((r) => [w.major, r.major, w.bin, r.bin] as const));
  // V8 12 (Node 22) reordered the fields of a serialized Error: it cannot decode the cause
  // of an Error written by Node 20's V8 11. Such a file fails loudly, naming its writer; the
  // portable format (#13) lifts this.
  const causeUnreadable = (w: string, r: string) => w === '20' && Number(r) >= 22;

  test.each(pairs)(
    'written by Node %s, restored by Node %s: every type intact',
    (w, r, writer, reader) => {
      if (!causeUnreadable(w, r)) {
        expect(JSON.parse(roundTrip(writer, reader))).toEqual(reference);
        return;
      }
      const failed = (() => {
        try {
          roundTrip(writer, reader);
        } catch (err) {
          return err as { status: number; stderr: string };
        }
        throw new Error('expected the restore to fail');
      })();
      expect(failed.status).toBe(1);
      expect(failed.stderr).toMatch(
        /UnsupportedFormatError: Checkpoint file \S+ was written by Node v20\.\d+\.\d+ and cannot be decoded by Node v\d+\.\d+\.\d+: .* Restore it with Node 20\./,
      );
      expect(failed.stderr).not.toMatch(/CorruptCheckpointError/);
      expect(JSON.parse(roundTrip(writer, reader, 'no-cause'))).toEqual(noCause);
    },
  );
});
