/**
 * Same result as uninterrupted: test/fixtures/exact/compute.mjs runs a seeded computation in
 * `chp.range` loops; it is SIGKILLed at random moments (10–300 ms after it restored and
 * entered its loops, one kill in five 10–300 ms after spawn: while starting, taking the lock
 * or restoring; one signal in ten is a SIGTERM instead, which the checkpoint handles by saving
 * at the loop's next boundary) and restarted
 * in the same folder until it finishes. Its final output must equal, byte for byte (every
 * double printed in shortest round-trip form, and a sha256 of it all), the output of one
 * uninterrupted run. Three computations: draws through `chp.random`, the same with
 * `Math.random` under `mathRandom: true`, and loops (top level, nested over a one-shot
 * generator, a second top-level loop) whose bodies append their index to the state, which
 * must end as exactly the expected sequences: no item twice, none missing.
 *
 * 50 kills per computation by default (150 in all, the three in parallel); SOAK=1: 1000 each.
 * KILL_SEED=<n> replays the kill timings of an earlier run (printed in failure messages).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint, type CheckpointOptions, memoryStore, Random } from '../../dist/index.js';

const SOAK = process.env.SOAK === '1';
const KILLS = SOAK ? 1000 : 50;
const SEED = Number(process.env.KILL_SEED ?? Date.now() % 1_000_000);
const FIXTURE = fileURLToPath(new URL('../fixtures/exact/compute.mjs', import.meta.url));
/** Items of the main loop: an uninterrupted run takes about 1–2 s. */
const N = { random: 24_000, math: 60_000, boundary: 12_000 } as const;
type Mode = keyof typeof N;
/** A run still going after this long is hung: killed and reported. */
const RUN_TIMEOUT_MS = 60_000;

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function freshDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `rs-exact-${label}-`));
  made.push(dir);
  return dir;
}

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  killed: boolean;
}

/** When a kill is timed from: the spawn, or the `start` line (restored, in the loop). */
type KillFrom = 'spawn' | 'start';

interface Kill {
  delay: number;
  from: KillFrom;
  /** SIGTERM: the checkpoint saves at the loop's next boundary and exits with 143. */
  signal: 'SIGKILL' | 'SIGTERM';
}

/**
 * Runs the fixture; SIGKILLs it `kill.delay` ms after `kill.from` unless it exits first.
 * Timing from `start` makes the kills land in the loops whatever the machine's load, since
 * starting Node, the writer thread and restoring take 100–400 ms.
 */
function run(dir: string, mode: Mode, kill?: Kill): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FIXTURE, dir, mode, String(N[mode])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      timer ??= setTimeout(() => {
        killed = child.exitCode === null && child.signalCode === null;
        child.kill(kill!.signal);
      }, kill!.delay);
    };
    if (kill?.from === 'spawn') arm();
    const hang = setTimeout(() => {
      stderr += `\n[still running after ${RUN_TIMEOUT_MS} ms: killed as hung]`;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (kill?.from === 'start' && stdout.includes('start ')) arm();
    });
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(hang);
      resolve({ stdout, stderr, code, signal, killed });
    });
  });
}

/** The `result` line of a run that finished, or throws with what the run printed. */
function resultOf(r: Run, where: string): string {
  const line = r.stdout.split('\n').find((l) => l.startsWith('result '));
  if (r.code !== 0 || line === undefined) {
    throw new Error(
      `${where}: expected a finished run, got code ${r.code} signal ${r.signal}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr}`,
    );
  }
  return line;
}

interface Chains {
  /** Runs ended by SIGKILL. */
  kills: number;
  /** Runs ended by SIGTERM. */
  terms: number;
  chains: number;
  /** `start` values seen, per chain: items done before each run. */
  starts: number[][];
}

/**
 * Kills and restarts the fixture in one folder until it finishes, checking its final output
 * against `reference`; starts a new folder when a chain finished before `kills` kills.
 */
async function killUntilDone(mode: Mode, kills: number, seed: number, reference: string) {
  // The library's own seeded generator: a failing sequence can be replayed from its seed.
  const random = new Random(seed).next;
  const stats: Chains = { kills: 0, terms: 0, chains: 0, starts: [] };
  while (stats.kills < kills) {
    const dir = freshDir(mode);
    const starts: number[] = [];
    stats.starts.push(starts);
    stats.chains++;
    for (let attempt = 0; ; attempt++) {
      const where = `${mode} chain ${stats.chains} run ${attempt} (KILL_SEED=${seed}, dir ${dir})`;
      // Runs are left alone once the quota is reached, so that every chain finishes.
      let kill: Kill | undefined;
      if (stats.kills < kills) {
        const from = random() < 0.2 ? 'spawn' : 'start';
        const signal = random() < 0.1 ? 'SIGTERM' : 'SIGKILL';
        kill = { from, signal, delay: 10 + Math.floor(random() * 291) };
      }
      const r = await run(dir, mode, kill);
      const start = /^start (\d+)$/m.exec(r.stdout);
      if (start !== null) {
        const done = Number(start[1]);
        expect(done, `${where}: never goes back`).toBeGreaterThanOrEqual(starts.at(-1) ?? 0);
        starts.push(done);
      }
      if (r.killed && kill?.signal === 'SIGKILL' && r.signal === 'SIGKILL') {
        stats.kills++;
        continue;
      }
      // Code 0: the run ended before the signal reached it (this side saw the exit late); it
      // must then have finished, with the reference's result.
      if (r.killed && kill?.signal === 'SIGTERM' && r.code !== 0) {
        // Saved on the signal and exited as SIGTERM would (or died of it before the
        // checkpoint was listening).
        expect(
          r.code === 143 || r.signal === 'SIGTERM',
          `${where}: SIGTERM ends the run with 143, got code ${r.code} signal ${r.signal}: ${r.stderr}`,
        ).toBe(true);
        stats.terms++;
        continue;
      }
      expect(resultOf(r, where), `${where}: same output as the uninterrupted run`).toBe(reference);
      break;
    }
  }
  return stats;
}

const references = new Map<Mode, Promise<string>>();
/** The output of one uninterrupted run (computed once per mode). */
function reference(mode: Mode): Promise<string> {
  let ref = references.get(mode);
  if (ref === undefined) {
    ref = run(freshDir(`${mode}-ref`), mode).then((r) => resultOf(r, `${mode} reference run`));
    references.set(mode, ref);
  }
  return ref;
}

const TIMEOUT = SOAK ? 3_600_000 : 120_000;

describe.concurrent('exactness under SIGKILL', () => {
  it.each([
    ['random', 'draws through chp.random'],
    ['math', 'Math.random with mathRandom: true'],
  ] as const)(
    `%s: ${KILLS} kills of a computation using %s give the bit-identical result`,
    async (mode, _what) => {
      const expected = await reference(mode);
      // A second uninterrupted run agrees: the computation itself is deterministic.
      expect(resultOf(await run(freshDir(`${mode}-ref2`), mode), 'second reference')).toBe(
        expected,
      );
      const stats = await killUntilDone(mode, KILLS, SEED + (mode === 'random' ? 0 : 1), expected);
      expect(stats.kills).toBeGreaterThanOrEqual(KILLS);
      // The kills landed inside the loop: some runs resumed from the middle.
      const resumed = stats.starts.flat().filter((s) => s > 0 && s < N[mode]);
      expect(resumed.length, `resumed mid-loop (KILL_SEED=${SEED})`).toBeGreaterThan(0);
    },
    TIMEOUT,
  );

  it(
    `${KILLS} kills of loops appending their index: exactly [0 … n-1], nothing twice, nothing missing`,
    async () => {
      const n = N.boundary;
      const expected = await reference('boundary');
      const json = JSON.parse(expected.split(' ').slice(2).join(' ')) as {
        done: number;
        first: number[];
        nested: number[];
        last: number[];
      };
      expect(json.first).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(json.nested).toEqual(
        Array.from({ length: 40 * 25 }, (_, k) => Math.floor(k / 25) * 1000 + (k % 25)),
      );
      expect(json.last).toEqual(Array.from({ length: n }, (_, i) => n - i));
      expect(json.done).toBe(2 * n + 1000);
      const stats = await killUntilDone('boundary', KILLS, SEED + 2, expected);
      expect(stats.kills).toBeGreaterThanOrEqual(KILLS);
      const resumed = stats.starts.flat().filter((s) => s > 0 && s < json.done);
      expect(resumed.length, `resumed mid-loop (KILL_SEED=${SEED})`).toBeGreaterThan(0);
    },
    TIMEOUT,
  );
});

/** The loop API of the Checkpoint (typed here so this file compiles before and after it lands). */
type LoopCheckpoint<T extends object> = Checkpoint<T> & {
  range(start: number, end?: number, step?: number): Iterable<number>;
  each<I>(items: Iterable<I>): Iterable<I>;
  each<I>(items: AsyncIterable<I>): AsyncIterable<I>;
};

function open<T extends object>(options: Record<string, unknown>): LoopCheckpoint<T> {
  return new Checkpoint<T>({
    log: false,
    signals: false,
    ...options,
  } as CheckpointOptions) as LoopCheckpoint<T>;
}

describe('Checkpoint loops and options, in one process', () => {
  /** One call site for every run, as in a function called again after a restart. */
  function squares(chp: LoopCheckpoint<{ out: number[] }>, stopAt: number): number[] {
    const s = chp.restore({ out: [] });
    for (const i of chp.range(10)) {
      if (i === stopAt) break;
      s.out.push(i * i);
    }
    return s.out;
  }

  it('range resumes in a new instance at the first item not done', () => {
    const store = memoryStore();
    const first = open<{ out: number[] }>({ name: 'squares', store, interval: 0 });
    expect(squares(first, 4)).toEqual([0, 1, 4, 9]);
    first.close();
    const second = open<{ out: number[] }>({ name: 'squares', store, interval: 0 });
    expect(squares(second, -1)).toEqual([0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    second.save();
    second.close();
    // Finished: a third run does no item again.
    const third = open<{ out: number[] }>({ name: 'squares', store, interval: 0 });
    expect(squares(third, -1)).toHaveLength(10);
    third.close();
  });

  it('each over an async iterable resumes too', async () => {
    const store = memoryStore();
    async function* pages() {
      for (let p = 0; p < 5; p++) yield `page${p}`;
    }
    const fetchAll = async (stopAt: string) => {
      const chp = open<{ got: string[] }>({ name: 'pages', store, interval: 0 });
      const s = chp.restore({ got: [] });
      for await (const page of chp.each(pages())) {
        if (page === stopAt) break;
        s.got.push(page);
      }
      chp.close();
      return s.got;
    };
    expect(await fetchAll('page2')).toEqual(['page0', 'page1']);
    expect(await fetchAll('')).toEqual(['page0', 'page1', 'page2', 'page3', 'page4']);
  });

  it('mathRandom routes Math.random through chp.random until close()', () => {
    const original = Math.random;
    const chp = open({ name: 'math', store: memoryStore(), seed: 42, mathRandom: true });
    const expected = new Random(42);
    expect([Math.random(), Math.random()]).toEqual([expected.next(), expected.next()]);
    chp.close();
    expect(Math.random).toBe(original);
  });

  it('mathRandom: nested checkpoints put Math.random back in order, even closed out of order', () => {
    const original = Math.random;
    const outer = open({ name: 'outer', store: memoryStore(), seed: 1, mathRandom: true });
    const inner = open({ name: 'inner', store: memoryStore(), seed: 2, mathRandom: true });
    const innerDraws = new Random(2);
    expect(Math.random()).toBe(innerDraws.next());
    outer.close();
    expect(Math.random()).toBe(innerDraws.next()); // still the inner checkpoint's
    inner.close();
    expect(Math.random).toBe(original);
  });

  it('validates the new options', () => {
    expect(() => open({ name: 'v', store: memoryStore(), mathRandom: 'yes' })).toThrow(
      new TypeError("Expected `mathRandom` to be a boolean, got `'yes'` (string)"),
    );
    expect(() => open({ name: 'v', store: memoryStore(), progress: 1 })).toThrow(
      new TypeError('Expected `progress` to be a boolean, got `1` (number)'),
    );
    // On a pipe (as under the test runner) progress: true draws nothing.
    const chp = open<{ n: number }>({ name: 'p', store: memoryStore(), progress: true });
    chp.restore({ n: 0 });
    expect([...chp.range(3)]).toEqual([0, 1, 2]);
    chp.close();
  });
});
