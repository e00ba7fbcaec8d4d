/**
 * `resumable-state/register` (#14.2): lodash captures `Math.random` when it is imported, before
 * any checkpoint exists, so `mathRandom: true` alone cannot reach it. With the preload,
 * `_.shuffle` draws from the checkpoint's generator: identical output across runs, and after
 * SIGKILLs at random moments. Runs the built package (dist/) as a user's process would.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { installMathRandom, routeMathRandom } from '../src/math-random.js';
import { cleanedAfterEach } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/register/lodash-shuffle.mjs', import.meta.url));
const ITEMS = 400;
const { tempDir, children } = cleanedAfterEach('rs-register-');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the fixture; with `killAtLine`, SIGKILLs it once it printed that many progress lines
 * (`at <i>` every 20 items) in this run: mid-loop, however fast the machine is.
 */
function run(dir: string, how: 'preload' | 'first-import' | 'none', killAtLine?: number) {
  const args = [FIXTURE, dir, String(ITEMS)];
  if (how === 'preload') args.unshift('--import', 'resumable-state/register');
  if (how === 'first-import') args.push('--first-import');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
    if (killAtLine !== undefined && (stdout.match(/^at \d+$/gm)?.length ?? 0) >= killAtLine) {
      child.kill('SIGKILL');
      killAtLine = undefined;
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  return new Promise<Run>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The hashes printed by a finished run. */
function result(r: Run): number[] {
  expect(r.code, r.stderr).toBe(0);
  const last = r.stdout.trim().split('\n').at(-1)!; // after the progress lines
  return JSON.parse(last) as number[];
}

describe('resumable-state/register', () => {
  it('without it, lodash captured Math.random first and two fresh runs differ', async () => {
    const a = result(await run(tempDir(), 'none'));
    const b = result(await run(tempDir(), 'none'));
    expect(a).toHaveLength(ITEMS);
    expect(a).not.toEqual(b);
  });

  it('with --import resumable-state/register, two fresh runs of _.shuffle are identical', async () => {
    const a = result(await run(tempDir(), 'preload'));
    const b = result(await run(tempDir(), 'preload'));
    expect(a).toHaveLength(ITEMS);
    expect(b).toEqual(a);
  });

  it('as the first import, the same sequence as the preload', async () => {
    const a = result(await run(tempDir(), 'preload'));
    const b = result(await run(tempDir(), 'first-import'));
    expect(b).toEqual(a);
  });

  it('killed at random moments and restarted, ends with the uninterrupted result', async () => {
    const expected = result(await run(tempDir(), 'preload'));
    const dir = tempDir();
    let kills = 0;
    let final: Run | undefined;
    for (let attempt = 0; attempt < 40 && final === undefined; attempt++) {
      const r = await run(
        dir,
        'preload',
        kills < 6 ? 1 + Math.floor(Math.random() * 4) : undefined,
      );
      if (r.signal === 'SIGKILL') kills++;
      else final = r;
    }
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(result(final!)).toEqual(expected);
  });
});

describe('routeMathRandom', () => {
  it('a reference captured before any checkpoint follows every install, then the engine again', () => {
    const engine = Math.random;
    routeMathRandom();
    routeMathRandom(); // idempotent
    const captured = Math.random;
    expect(captured).not.toBe(engine);
    const a = installMathRandom(() => 0.25);
    expect(captured()).toBe(0.25);
    const b = installMathRandom(() => 0.5);
    expect(captured()).toBe(0.5);
    expect(Math.random).toBe(captured);
    a(); // out of order: the newer install stays in charge
    expect(captured()).toBe(0.5);
    b();
    const draws = [captured(), captured()];
    expect(draws[0]).not.toBe(draws[1]);
    expect(Math.random).toBe(captured);
  });
});
