// Benchmark of chp.once() steps: `npm run bench:steps` (or `node bench/steps.mjs`).
//
//   --runs N   measured runs per figure (default 5; medians are reported)
//   --quick    2 runs, smaller counts (a smoke test)
//   --write    write the table into docs/benchmarks-steps.md and the README's steps section
//
// 1. Durable steps per second: 5,000 steps whose work is a resolved promise, 64 in flight,
//    with durable 'batched' and 'step', and 'step' one at a time (each step its own flush).
//    Baselines in the same run: a JSON line appended and fsynced per step (what a careful
//    hand-rolled job does), and the whole results object rewritten (write, fsync, rename)
//    per step (what a job that keeps results in its state does).
// 2. Time per step with 1,000 and 100,000 steps already finished (half folded into the
//    snapshot, half in the journal): the cost must not grow. 2,000 new steps one at a time
//    with 'step', 20,000 with 'batched' x64, after one warm-up round. Also the time to open
//    the checkpoint and load those finished steps (snapshot + journal).
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  distUrl,
  freshDir,
  median,
  now,
  parseArgs,
  removeDir,
  writeSmallReport,
} from './common.mjs';

const { Checkpoint } = await import(distUrl());
const args = parseArgs(process.argv.slice(2));
const runs = args.runs ?? (args.quick ? 2 : 5);
const STEPS = args.quick ? 1000 : 5000;
const log = (m) => process.stderr.write(`${m}\n`);

async function pool(n, concurrency, task) {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const open = (dir, options = {}) =>
  new Checkpoint({ name: 'steps', dir, log: false, signals: false, ...options });

/** Steps per second of `STEPS` once() calls, in a fresh folder. */
async function onceRate(durable, concurrency) {
  const dir = freshDir();
  const chp = open(dir, { durable });
  const t = now();
  await pool(STEPS, concurrency, (i) => chp.once(`k${i}`, async () => ({ i, ok: true })));
  await chp.flush();
  const elapsed = now() - t;
  chp.close();
  removeDir(dir);
  return (STEPS / elapsed) * 1000;
}

/** Baseline: one JSON line appended and fsynced per step, one at a time. */
async function appendRate() {
  const dir = freshDir();
  const fd = openSync(join(dir, 'results.jsonl'), 'a');
  const t = now();
  await pool(STEPS, 1, async (i) => {
    const value = await Promise.resolve({ i, ok: true });
    writeSync(fd, `${JSON.stringify({ key: `k${i}`, value })}\n`);
    fsyncSync(fd);
  });
  const elapsed = now() - t;
  closeSync(fd);
  removeDir(dir);
  return (STEPS / elapsed) * 1000;
}

/** Baseline: the whole results object rewritten durably after each step. */
async function rewriteRate(count) {
  const dir = freshDir();
  const file = join(dir, 'results.json');
  const results = {};
  const t = now();
  await pool(count, 1, async (i) => {
    results[`k${i}`] = await Promise.resolve({ i, ok: true });
    const fd = openSync(`${file}.tmp`, 'w');
    writeSync(fd, JSON.stringify(results));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(`${file}.tmp`, file);
  });
  const elapsed = now() - t;
  removeDir(dir);
  return (count / elapsed) * 1000;
}

/** µs per new step, and ms to load, with `finished` steps already recorded (and folded). */
async function perStepAt(finished, durable, concurrency) {
  const dir = freshDir();
  let chp = open(dir, { durable: 'batched' });
  chp.restore({});
  await pool(finished, 64, (i) => chp.once(`old${i}`, () => i));
  chp.save();
  // Half of them folded into the snapshot, half in the journal, as after a crash.
  await pool(finished, 64, (i) => chp.once(`late${i}`, () => i));
  chp.close();
  let t = now();
  chp = open(dir, { durable });
  const done = chp.stats().done;
  const loadMs = now() - t;
  if (done !== 2 * finished) throw new Error(`expected ${2 * finished} steps, found ${done}`);
  // Enough new steps that a Map growing or the first calls' compilation do not dominate.
  const n = durable === 'step' && concurrency === 1 ? 2000 : 20_000;
  t = now();
  await pool(n, concurrency, (i) => chp.once(`new${i}`, () => i));
  await chp.flush();
  const perStep = ((now() - t) / n) * 1000;
  chp.close();
  removeDir(dir);
  return { perStep, loadMs };
}

async function measure(label, fn) {
  const samples = [];
  for (let r = 0; r < runs; r++) samples.push(await fn());
  log(
    `${label}: ${samples.map((s) => (typeof s === 'number' ? s.toFixed(1) : JSON.stringify(s))).join(', ')}`,
  );
  return samples;
}

const rate = {
  batched64: median(await measure("once, 'batched', 64 in flight", () => onceRate('batched', 64))),
  step64: median(await measure("once, 'step', 64 in flight", () => onceRate('step', 64))),
  step1: median(await measure("once, 'step', one at a time", () => onceRate('step', 1))),
  append: median(await measure('append + fsync per step', appendRate)),
  rewrite: median(await measure('rewrite results per step (1k)', () => rewriteRate(1000))),
};
const big = args.quick ? 10_000 : 50_000;
const scaling = {};
await perStepAt(500, 'batched', 64); // warm-up, not reported: the first sizes measured run cold
for (const finished of [500, big]) {
  for (const [durable, concurrency] of [
    ['step', 1],
    ['batched', 64],
  ]) {
    const samples = await measure(`${2 * finished} finished, '${durable}' x${concurrency}`, () =>
      perStepAt(finished, durable, concurrency),
    );
    scaling[`${finished}-${durable}`] = {
      perStep: median(samples.map((s) => s.perStep)),
      loadMs: median(samples.map((s) => s.loadMs)),
    };
  }
}

const f0 = (x) => Math.round(x).toLocaleString('en-US');
const f1 = (x) => x.toFixed(1);
const lines = [
  `Steps of \`chp.once()\` (${STEPS.toLocaleString('en-US')} steps per figure, medians of ${runs} runs, ` +
    `${new Date().toISOString().slice(0, 10)}):`,
  '',
  '| | steps/s | vs append + fsync per step |',
  '|---|---|---|',
  `| \`once\`, \`durable: 'batched'\`, 64 in flight | ${f0(rate.batched64)} | ${f1(rate.batched64 / rate.append)}× |`,
  `| \`once\`, \`durable: 'step'\` (default), 64 in flight (group commit) | ${f0(rate.step64)} | ${f1(rate.step64 / rate.append)}× |`,
  `| \`once\`, \`durable: 'step'\`, one at a time | ${f0(rate.step1)} | ${f1(rate.step1 / rate.append)}× |`,
  `| baseline: JSON line appended + fsync per step, one at a time | ${f0(rate.append)} | 1× |`,
  `| baseline: whole results rewritten + fsync per step, first 1,000 steps | ${f0(rate.rewrite)} | ${f1(rate.rewrite / rate.append)}× |`,
  '',
  `| steps already finished | µs per new step, \`'step'\` one at a time | µs per new step, \`'batched'\` 64 in flight | open + load the finished steps |`,
  '|---|---|---|---|',
  ...[500, big].map(
    (n) =>
      `| ${(2 * n).toLocaleString('en-US')} | ${f0(scaling[`${n}-step`].perStep)} | ${f1(scaling[`${n}-batched`].perStep)} | ${f0(scaling[`${n}-batched`].loadMs)} ms |`,
  ),
];
const table = lines.join('\n');
process.stdout.write(`${table}\n`);

if (args.write) {
  writeSmallReport(
    new URL(import.meta.url),
    'Benchmarks: steps',
    'benchmarks-steps.md',
    'bench-steps',
    table,
  );
}
