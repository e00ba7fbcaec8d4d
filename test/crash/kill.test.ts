/**
 * Crash safety under SIGKILL: a child process saves in a tight loop (test/fixtures/crash/
 * saver.mjs) and is killed at random moments, again and again in the same folder, each run
 * continuing from what the previous one left. After every kill this process checks, by
 * unpacking every generation file and by restoring with a new Checkpoint, that the
 * checkpoint loads, is internally consistent (no torn or mixed state), holds at least
 * everything a returned save() promised, and never goes backwards.
 *
 * 100 kills by default (two chains of 50 in parallel, each in its own folder); SOAK=1: 1000.
 * KILL_SEED=<n> replays the kill timings of an earlier run (printed in failure messages).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { unpackCheckpoint } from '../../dist/codec/container.js';
import { Checkpoint, Random } from '../../dist/index.js';

const SOAK = process.env.SOAK === '1';
const KILLS = SOAK ? 1000 : 100;
const SEED = Number(process.env.KILL_SEED ?? Date.now() % 1_000_000);
const FIXTURE = fileURLToPath(new URL('../fixtures/crash/saver.mjs', import.meta.url));
/** A run that neither prints nor dies by then is a hang: killed and reported. */
const RUN_TIMEOUT_MS = 15_000;
const WAVE = 9000;

const made: string[] = [];
const live = new Set<ChildProcess>();
const running: Promise<unknown>[] = [];
/** Set when a chain failed (or the test ended): the other chain stops at its next kill. */
let aborted = false;

afterAll(async () => {
  // A failed chain must not leave its sibling, or a saver, running behind the test.
  aborted = true;
  for (const child of live) child.kill('SIGKILL');
  await Promise.allSettled(running);
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

const hash = (i: number): string =>
  createHash('sha256').update(`state-${i}`).digest('hex').slice(0, 16);

interface SavedState {
  i: number;
  data: number[];
  check: string;
  wave: Float64Array;
  meta: { i: number; label: string; at: Map<string, number> };
}

/** Why `s` is not the state of one single step of the saver, or undefined when it is. */
function inconsistency(s: SavedState): string | undefined {
  if (!Number.isSafeInteger(s.i) || s.i < 1) return `i is ${String(s.i)}`;
  if (s.check !== hash(s.i)) return `check ${s.check} is not hash(${s.i})`;
  if (!Array.isArray(s.data) || s.data.length !== s.i) {
    return `data has ${s.data?.length} items for i = ${s.i}`;
  }
  for (let k = 0; k < s.i; k++) {
    if (s.data[k] !== ((k + 1) * 7919) % 10007) return `data[${k}] is ${s.data[k]}`;
  }
  if (!(s.wave instanceof Float64Array) || s.wave.length !== WAVE)
    return 'wave is not 9000 doubles';
  for (let k = 0; k < WAVE; k++) {
    if (s.wave[k] !== s.i * 0.5 + k) return `wave[${k}] is ${s.wave[k]} for i = ${s.i}`;
  }
  if (s.meta.i !== s.i || s.meta.label !== `step ${s.i}` || s.meta.at.get('i') !== s.i) {
    return `meta ${JSON.stringify({ ...s.meta, at: [...s.meta.at] })} for i = ${s.i}`;
  }
  return undefined;
}

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What the kill delay is counted from. */
type KillFrom = 'spawn' | 'start' | 'saving';

/**
 * Starts the saver and SIGKILLs it `delay` ms after `from`:
 * - 'spawn': it was spawned (it may be starting up, taking the lock, cleaning up, restoring);
 * - 'start': it printed `start` (restored, in its first save of the run, the slowest one);
 * - 'saving': it printed its first `saved` line (in the steady loop of saves).
 */
function runAndKill(args: string[], delay: number, from: KillFrom): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [FIXTURE, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    let armed = false;
    const arm = () => {
      if (armed) return;
      armed = true;
      setTimeout(() => child.kill('SIGKILL'), delay);
    };
    const hang = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    const trigger = from === 'saving' ? 'saved ' : 'start ';
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes(trigger)) arm();
    });
    child.stderr!.on('data', (chunk: string) => {
      stderr += chunk;
    });
    if (from === 'spawn') arm();
    child.on('error', reject);
    child.on('close', (code, signal) => {
      live.delete(child);
      clearTimeout(hang);
      if (!armed) stderr += `[no "${trigger.trim()}" line within ${RUN_TIMEOUT_MS} ms: killed]`;
      resolve({ stdout, stderr, code, signal });
    });
  });
}

interface Chain {
  label: string;
  keep: number;
  compression: 'brotli' | 'gzip' | 'none';
}

interface ChainResult {
  finalI: number;
  /** Runs killed after their first returned save: each moves the state on by at least one. */
  runsThatSaved: number;
  /** Runs killed while a save was writing its temp file. */
  killedWriting: number;
  /** Runs killed after the rotation but before the final rename (`.1` linked to the latest). */
  killedRotating: number;
  /** Runs killed between a save's rename and its return (the save in flight is on disk). */
  killedAfterRename: number;
}

/** Kills the saver `kills` times in one folder; checks the checkpoint after each kill. */
async function killChain(chain: Chain, kills: number, seed: number): Promise<ChainResult> {
  // The library's own seeded generator: a failing sequence can be replayed from its seed.
  const random = new Random(seed).next;
  const dir = mkdtempSync(join(tmpdir(), `rs-kill-${chain.label}-`));
  made.push(dir);
  const name = 'soak';
  const latest = join(dir, `${name}.ckpt`);
  let restoredI = 0;
  /** Runs that certainly saved at least once (killed after a `saved` line). */
  let runsThatSaved = 0;
  let killedWriting = 0;
  let killedRotating = 0;
  let killedAfterRename = 0;
  for (let run = 0; run < kills && !aborted; run++) {
    const draw = random();
    const from: KillFrom = draw < 0.15 ? 'spawn' : draw < 0.6 ? 'start' : 'saving';
    const delay = from === 'spawn' ? 60 + Math.floor(random() * 91) : 5 + Math.floor(random() * 56);
    if (from === 'saving') runsThatSaved++;
    const where = `${chain.label} run ${run} (seed ${seed}, kill ${delay} ms after ${from}, dir ${dir})`;
    const result = await runAndKill(
      [dir, name, String(chain.keep), chain.compression],
      delay,
      from,
    );
    expect(
      { code: result.code, signal: result.signal, stderr: result.stderr },
      `${where}: the saver must only die by SIGKILL`,
    ).toEqual({ code: null, signal: 'SIGKILL', stderr: '' });

    // What the child reported: where it started and every save that returned, in order.
    const lines = result.stdout.split('\n').filter((line) => line !== '');
    const started = lines[0]?.startsWith('start ') ? Number(lines[0].slice(6)) : undefined;
    if (started !== undefined) {
      expect(started, `${where}: resumed from the state checked after the last kill`).toBe(
        restoredI,
      );
    }
    const saved = lines.slice(started === undefined ? 0 : 1).map((line) => {
      expect(line, `${where}: output line`).toMatch(/^saved \d+$/);
      return Number(line.slice(6));
    });
    expect(saved, `${where}: saves report consecutive steps`).toEqual(
      saved.map((_, k) => restoredI + k + 1),
    );
    const promised = saved.at(-1) ?? restoredI;

    // Every generation on disk unpacks and is one consistent step, newest first.
    const files = readdirSync(dir).sort();
    if (files.some((f) => /^soak\.ckpt\.tmp-/.test(f))) killedWriting++;
    if (
      files.includes(`${name}.ckpt.1`) &&
      statSync(latest).ino === statSync(join(dir, `${name}.ckpt.1`)).ino
    ) {
      killedRotating++;
    }
    const generations = files
      .filter((f) => f === `${name}.ckpt` || /^soak\.ckpt\.\d+$/.test(f))
      .sort((a, b) => Number(a.slice(10) || 0) - Number(b.slice(10) || 0));
    if (restoredI === 0 && saved.length === 0 && !files.includes(`${name}.ckpt`)) {
      // Killed before its first save ever completed: nothing may be there to restore yet.
      expect(generations, `${where}: generations`).toEqual([]);
      continue;
    }
    expect(generations[0], `${where}: the latest generation exists`).toBe(`${name}.ckpt`);
    expect(generations.length, `${where}: at most keep generations`).toBeLessThanOrEqual(
      chain.keep,
    );
    let newer = Number.POSITIVE_INFINITY;
    for (const file of generations) {
      const path = join(dir, file);
      const { envelope } = unpackCheckpoint(readFileSync(path), path);
      const state = envelope.state as SavedState;
      expect(inconsistency(state), `${where}: ${file} is one consistent step`).toBe(undefined);
      expect(state.i, `${where}: ${file} is not newer than the one before it`).toBeLessThanOrEqual(
        newer,
      );
      newer = state.i;
    }
    const onDisk = (unpackCheckpoint(readFileSync(latest), latest).envelope.state as SavedState).i;
    expect(onDisk, `${where}: every returned save is on disk`).toBeGreaterThanOrEqual(promised);
    expect(onDisk, `${where}: at most the save in flight on top`).toBeLessThanOrEqual(promised + 1);
    if (onDisk > promised) killedAfterRename++;

    // A new Checkpoint takes the dead child's lock, cleans its temp files and restores the
    // latest generation without falling back.
    const notices: string[] = [];
    const chp = new Checkpoint<SavedState>({
      name,
      dir,
      keep: chain.keep,
      log: (line) => notices.push(line),
      signals: false,
      expire: false,
    });
    const restored = chp.restore({
      i: 0,
      data: [],
      check: '',
      wave: new Float64Array(0),
      meta: { i: 0, label: '', at: new Map() },
    });
    chp.close();
    expect(restored.i, `${where}: restore() returns the latest generation`).toBe(onDisk);
    expect(inconsistency(restored), `${where}: restored state`).toBe(undefined);
    expect(notices, `${where}: notices`).toEqual([
      expect.stringMatching(/^resumable-state: resumed "soak" from save #\d+ of /),
    ]);
    expect(
      readdirSync(dir).filter((f) => !/^soak\.ckpt(\.\d+)?$/.test(f)),
      `${where}: no temp or lock files left once a new Checkpoint opened and closed`,
    ).toEqual([]);
    expect(onDisk, `${where}: never backwards`).toBeGreaterThanOrEqual(restoredI);
    restoredI = onDisk;
  }
  return { finalI: restoredI, runsThatSaved, killedWriting, killedRotating, killedAfterRename };
}

describe('SIGKILL at random moments while saving', () => {
  const chains: Chain[] = [
    { label: 'brotli-keep2', keep: 2, compression: 'brotli' },
    { label: 'raw-keep3', keep: 3, compression: 'none' },
  ];

  it(
    `${KILLS} kills (2 folders in parallel): the checkpoint always loads, is consistent, holds every returned save and never goes back`,
    async () => {
      const perChain = KILLS / chains.length;
      const chainRuns = chains.map((chain, k) =>
        killChain(chain, perChain, SEED + k).catch((err: unknown) => {
          aborted = true;
          throw err;
        }),
      );
      running.push(...chainRuns);
      const results = await Promise.all(chainRuns);
      if (process.env.KILL_STATS === '1') console.log(JSON.stringify(results));
      const total = (key: keyof ChainResult) => results.reduce((n, r) => n + r[key], 0);
      // The kills must land inside saves, not only around them, for this to mean much.
      expect(total('killedWriting'), `kills while writing (seed ${SEED})`).toBeGreaterThan(0);
      for (const [k, result] of results.entries()) {
        expect(
          result.finalI,
          `${chains[k]!.label} (seed ${SEED + k}): progress of at least one step per run that saved`,
        ).toBeGreaterThanOrEqual(result.runsThatSaved);
        expect(result.runsThatSaved).toBeGreaterThan(0);
      }
    },
    SOAK ? 1_800_000 : 120_000,
  );
});
