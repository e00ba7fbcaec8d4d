// `npm run bench:runtimes`: our durable `save()`, the main-thread pause of a due `sync()` and
// `restore()` on S1, S2 and S3 (bench/common.mjs, as in `npm run bench`) under Node 20, Bun
// and Deno side by side (#13.2).
//
//   --runs N      measured runs per figure (default 5; medians are reported)
//   --quick       2 runs and workloads a tenth of the size (a smoke test, about a minute)
//   --only S1,S2  only these workloads
//   --write / --no-write  write the README region and docs/benchmarks-runtimes.md, or not
//                 (default: only for a full run, without --quick or --only)
//
// Method: each workload on each runtime runs in a child process of its own
// (bench/workload.mjs --mode ours, through bench/runtimes-child.mjs, which gives Bun a gc()),
// with the measurement of `npm run bench`: a fresh folder, the second save timed (keep 2),
// the second due sync() timed to its return (the background write finishes untimed), then
// restore() by a new Checkpoint in the same process (the file in the page cache). Workloads
// run one after the other, the three runtimes in turn for each, so that a change in the
// machine's load weighs on all three. The children measure a copy of dist/ taken at the start.
// Node 20, Bun 1 and Deno 2 come from npm (scripts/install-runtimes.mjs, as for
// `npm run test:runtimes`). Figures move between runs by 10-30% on a shared machine.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, rmdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bunBinary, denoBinary, nodeBinary, versionOf } from '../scripts/install-runtimes.mjs';
import { median, parseArgs, RESULT_PREFIX, writeSmallReport } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = parseArgs(process.argv.slice(2));
const progress = (message) => process.stderr.write(`${message}\n`);
const started = Date.now();

const WORKLOADS = ['S1', 'S2', 'S3'];
const workloads = args.only ?? WORKLOADS;
for (const id of workloads) {
  if (WORKLOADS.includes(id)) continue;
  progress(`--only: unknown workload ${id} (expected some of ${WORKLOADS.join(', ')})`);
  process.exit(2);
}
const write = args.write ?? (!args['no-write'] && !args.quick && args.only === undefined);
if (!existsSync(join(root, 'dist/index.js'))) {
  throw new Error('dist/ is missing: run `npm run bench:runtimes` (it builds) or `npm run build`');
}

/* V8's heap limit raised for S2 as in `npm run bench`; Bun's engine (JavaScriptCore) has none. */
const v8Flags = ['--expose-gc', '--max-old-space-size=8192'];
const runtimes = [
  { label: 'Node', bin: nodeBinary('20'), prefix: v8Flags },
  { label: 'Bun', bin: bunBinary(), prefix: [] },
  { label: 'Deno', bin: denoBinary(), prefix: ['run', '-A', `--v8-flags=${v8Flags.join(',')}`] },
];
for (const rt of runtimes) {
  // `v20.20.2`, `1.4.5`, `deno 2.9.6 (stable, …)`: the version number alone.
  rt.version = /\d+\.\d+\.\d+/.exec(versionOf(rt.bin))?.[0] ?? '?';
  progress(`${rt.label} ${rt.version}: ${rt.bin}`);
}

/* The children measure a snapshot of dist/ (inside node_modules, so that the library's own
 * dependencies resolve from it), so that a rebuild during the run cannot mix two versions. */
const snapshot = join(root, 'node_modules/.cache/resumable-state-bench', `dist-rt-${process.pid}`);
cpSync(join(root, 'dist'), snapshot, { recursive: true });
process.on('exit', () => {
  rmSync(snapshot, { recursive: true, force: true });
  try {
    rmdirSync(dirname(snapshot)); // only if no other run's snapshot is in it
  } catch {}
});

/** One workload on one runtime: the `ours` samples of its `@@result` line, or `{ error }`. */
function measure(rt, id) {
  const argv = [
    ...rt.prefix,
    join(here, 'runtimes-child.mjs'),
    id,
    '--mode',
    'ours',
    '--runs',
    String(args.runs),
    ...(args.quick ? ['--quick'] : []),
  ];
  return new Promise((resolve) => {
    const t = Date.now();
    const child = spawn(rt.bin, argv, {
      cwd: root,
      env: { ...process.env, RS_BENCH_DIST: snapshot },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    // A stuck child (a runtime's bug) must not hang the run: 10 minutes at most.
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', (err) => resolve({ error: err.message }));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      progress(`  ${id} on ${rt.label}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (line !== undefined) return resolve(JSON.parse(line.slice(RESULT_PREFIX.length)).ours);
      resolve({ error: `exited with ${signal ?? code} and no result` });
    });
  });
}

const results = {};
for (const id of workloads) {
  for (const rt of runtimes) (results[id] ??= {})[rt.label] = await measure(rt, id);
}

/** `7.97 ms`, `125 ms`, `1.29 s`. */
function ms(x) {
  if (x >= 1000) return `${(x / 1000).toFixed(2)} s`;
  return `${x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2)} ms`;
}

const FIGURES = [
  ['saveRepeat', 'durable `save()`'],
  ['syncPause', 'main-thread pause of a due `sync()`'],
  ['restore', '`restore()`'],
];
const TITLES = { S1: 'S1 (100 MB typed arrays)', S2: 'S2 (200k objects)', S3: 'S3 (primes)' };
const failures = [];
const rows = [];
for (const id of workloads) {
  for (const [key, name] of FIGURES) {
    const node = results[id].Node?.[key];
    const cells = runtimes.map((rt) => {
      const r = results[id][rt.label];
      if (r.error !== undefined || r[key] === undefined) {
        failures.push(`${id} on ${rt.label}: ${r.error ?? `no ${key}`}`);
        return 'failed';
      }
      const m = median(r[key]);
      if (rt.label === 'Node' || node === undefined) return ms(m);
      return `${ms(m)} · ${(m / median(node)).toFixed(2)}×`;
    });
    rows.push(`| ${TITLES[id]}: ${name} | ${cells.join(' | ')} |`);
  }
}
const date = new Date().toISOString().slice(0, 10);
const cpu = `${os.cpus()[0]?.model?.trim() ?? 'unknown CPU'} (${os.cpus().length} cores)`;
const sizeNote = args.quick ? ' (--quick: workloads a tenth of the size)' : '';
const table = [
  `Medians of ${args.runs} runs${sizeNote}, measured ${date} on ${cpu}; Bun and Deno also as a ratio to Node (lower is faster).`,
  '',
  `|  | Node ${runtimes[0].version} | Bun ${runtimes[1].version} | Deno ${runtimes[2].version} |`,
  '| --- | --- | --- | --- |',
  ...rows,
].join('\n');

process.stdout.write(`\n${table}\n\n`);
if (failures.length > 0) {
  for (const f of failures) progress(`failed: ${f}`);
  progress('not written: some figures failed');
  process.exitCode = 1;
} else if (write) {
  writeSmallReport(
    fileURLToPath(import.meta.url),
    'Benchmarks: Node, Bun and Deno',
    'benchmarks-runtimes.md',
    'bench-runtimes',
    table,
  );
  progress('wrote docs/benchmarks-runtimes.md and the README between its bench-runtimes markers');
} else progress('not written (quick or partial run; pass --write to write them)');
progress(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
