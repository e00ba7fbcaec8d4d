// The benchmark suite: `npm run bench` (or `node --expose-gc bench/run.mjs`).
//
//   --runs N        measured runs per figure (default 5; medians are reported)
//   --quick         2 runs and workloads a tenth of the size (a smoke test)
//   --only S1,S2    only these parts: S1, S2, S3 (workloads), sync (the not-due cost)
//   --budget S      a slow baseline stops repeating once another run would pass S seconds
//                   (default 25; the number of runs is shown next to every figure)
//   --no-seed       skip the seed's Python method; --no-memory skips peak-memory children
//   --json PATH     also write every raw sample as JSON to PATH
//   --dist PATH     measure another build of the library (e.g. an older dist/, for a before/after)
//   --write / --no-write  write docs/benchmarks.md and the README region, or not (default:
//                   only for a full run, without --quick or --only)
//
// Each workload runs in child processes of its own (bench/workload.mjs for timings, one
// more per peak-memory figure, bench/seed.py for the seed's method), so their allocations
// never weigh on one another; this parent only collects their JSON and writes the report.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, parseArgs, RESULT_PREFIX, writeBetweenMarkers } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = parseArgs(process.argv.slice(2));
const started = Date.now();
const progress = (message) => process.stderr.write(`${message}\n`);

const PARTS = ['S1', 'S2', 'S3', 'sync'];
const parts = args.only ?? PARTS;
for (const p of parts) {
  if (PARTS.includes(p)) continue;
  progress(`--only: unknown part ${p} (expected some of ${PARTS.join(', ')})`);
  process.exit(2);
}
const distDir = args.dist === undefined ? join(root, 'dist') : String(args.dist);
if (!existsSync(join(distDir, 'index.js'))) {
  throw new Error('dist/ is missing: run `npm run bench` (it builds) or `npm run build` first');
}
const write = args.write ?? (!args['no-write'] && !args.quick && args.only === undefined);

function git(...argv) {
  const r = spawnSync('git', argv, { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const commit = git('rev-parse', '--short', 'HEAD');
const dirty = git('status', '--porcelain', '--', 'src');
// Others may rebuild dist/ while this runs: say so if it changed under us.
const distStamp = () =>
  ['index.js', 'checkpoint.js', 'codec/serializer.js', 'codec/container.js', 'writer/worker.js']
    .map((f) => (existsSync(join(distDir, f)) ? statSync(join(distDir, f)).mtimeMs : 0))
    .join(',');
const distAtStart = distStamp();
// The children measure a snapshot of dist/ taken now (inside node_modules, so the
// library's own dependencies still resolve), removed at the end.
const snapshot = join(
  root,
  'node_modules',
  '.cache',
  'resumable-state-bench',
  `dist-${process.pid}`,
);
cpSync(distDir, snapshot, { recursive: true });
process.on('exit', () => {
  rmSync(snapshot, { recursive: true, force: true });
  try {
    rmdirSync(dirname(snapshot)); // only if no other run's snapshot is in it
  } catch {}
});
const childEnv = { ...process.env, RS_BENCH_DIST: snapshot };

// ---------------------------------------------------------------------------------------
// Children

/** Runs a child; resolves with the object of its `@@result` line, or `{ error }`. */
function child(command, argv, label) {
  return new Promise((resolve) => {
    const t = Date.now();
    const proc = spawn(command, argv, {
      cwd: root,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
    });
    proc.on('error', (err) => resolve({ error: err.message }));
    proc.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      progress(`  ${label}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
      if (line !== undefined) return resolve(JSON.parse(line.slice(RESULT_PREFIX.length)));
      resolve({ error: `${label} exited with ${signal ?? code} and no result` });
    });
  });
}

const common = ['--runs', String(args.runs), '--budget', String(args.budget)];
if (args.quick) common.push('--quick');
const node = (script, ...rest) => [
  '--expose-gc',
  '--max-old-space-size=8192',
  join('bench', script),
  ...rest,
  ...common,
];

function pythonStatus() {
  if (args['no-seed']) return { python: false, reason: 'skipped (--no-seed)' };
  const probe = spawnSync(
    'python3',
    [
      '-c',
      'import platform; print(platform.python_version()); import numpy; print(numpy.__version__)',
    ],
    { encoding: 'utf8' },
  );
  if (probe.error !== undefined || probe.stdout.trim() === '') {
    return { python: false, reason: 'python3 not found' };
  }
  const [python, numpy] = probe.stdout.trim().split('\n');
  return numpy === undefined
    ? { python, numpy: false, reason: 'numpy missing: S1 seed skipped' }
    : { python, numpy };
}

// Other processes skew every figure: the load average goes into the report.
const loadAtStart = os.loadavg()[0];
if (loadAtStart > os.cpus().length / 2) {
  progress(
    `note: load average ${loadAtStart.toFixed(1)} on ${os.cpus().length} cores: other processes are busy, figures will be noisy`,
  );
}
const py = pythonStatus();
const results = { workloads: {}, sync: undefined };
for (const id of parts.filter((p) => p !== 'sync')) {
  progress(`${id}: timings`);
  const r = { timing: await child('node', node('workload.mjs', id), `${id} timings`) };
  if (!args['no-memory']) {
    progress(`${id}: peak memory`);
    r.memOurs = await child('node', node('workload.mjs', id, '--mode', 'memory-ours'), 'ours');
    r.memV8 = await child('node', node('workload.mjs', id, '--mode', 'memory-v8gzip'), 'v8+gzip');
  }
  if (!py.python) r.seed = { skipped: py.reason };
  else if (id === 'S1' && !py.numpy) r.seed = { skipped: py.reason };
  else {
    progress(`${id}: the seed's method (python3)`);
    const pyArgs = [join('bench', 'seed.py'), id, ...common];
    r.seed = await child('python3', pyArgs, `${id} seed`);
  }
  results.workloads[id] = r;
}
if (parts.includes('sync')) {
  progress('sync(): cost when not due');
  results.sync = await child('node', node('sync-cost.mjs'), 'sync cost');
}
const elapsed = (Date.now() - started) / 1000;

// ---------------------------------------------------------------------------------------
// Formatting

const MB = 1e6;
const med = (values) => (Array.isArray(values) && values.length > 0 ? median(values) : undefined);
const has = (x) => x !== undefined && !Number.isNaN(x);

function ms(x) {
  if (!has(x)) return 'n/a';
  if (x >= 1000) return `${(x / 1000).toFixed(2)} s`;
  if (x >= 100) return `${x.toFixed(0)} ms`;
  if (x >= 10) return `${x.toFixed(1)} ms`;
  return `${x.toFixed(2)} ms`;
}

function bytes(x) {
  if (!has(x)) return 'n/a';
  if (x >= 100 * MB) return `${(x / MB).toFixed(0)} MB`;
  if (x >= MB) return `${(x / MB).toFixed(1)} MB`;
  return `${(x / 1e3).toFixed(0)} KB`;
}

const rate = (n, t) => (has(n) && has(t) ? `${(n / t / 1e6).toFixed(2)} GB/s` : 'n/a');

function ratio(base, ours) {
  if (!has(base) || !has(ours)) return 'n/a';
  const r = base / ours;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(r >= 1 ? 1 : 2)}×`;
}

/** Our median over the physical limit's median, from the same alternating runs (#17.5). */
function limitRatio(ours, limit) {
  if (!has(ours) || !has(limit)) return 'n/a';
  return `${(ours / limit).toFixed(2)}×`;
}

const runsOf = (values) => (Array.isArray(values) ? values.length : 0);
const nRuns = (values) =>
  runsOf(values) === args.runs ? '' : ` (${runsOf(values)} run${runsOf(values) === 1 ? '' : 's'})`;

const W = (id) => results.workloads[id];
const T = (id) => W(id)?.timing;
const ids = Object.keys(results.workloads);
const TITLES = {
  S1: 'S1: 100 MB typed arrays',
  S2: 'S2: 200k objects',
  S3: 'S3: primes, 100k ints',
};
const titleOf = (id) => (args.quick ? `${TITLES[id]} (quick: ⅒ size)` : TITLES[id]);

/** The fastest of `values` (a run where the disk drew no slow round), or undefined. */
const fastestOf = (values) =>
  Array.isArray(values) && values.length > 0 ? Math.min(...values) : undefined;
/** Our durable save: every save() call of every run (first and later ones) pooled. */
const ourSave = (id) => {
  const o = T(id)?.ours;
  return o === undefined ? undefined : med([...(o.saveFirst ?? []), ...(o.saveRepeat ?? [])]);
};
const ourRestore = (id) => med(T(id)?.ours?.restore);
const seedOk = (id) => W(id)?.seed !== undefined && W(id).seed.save !== undefined;
const failure = (x) =>
  x === undefined ? 'not run' : (x.error ?? x.skipped ?? (x.ours === undefined ? '?' : ''));

function row(cells) {
  return `| ${cells.join(' | ')} |`;
}

function table(header, rows) {
  return [row(header), row(header.map(() => '---')), ...rows.map(row)].join('\n');
}

function summaryTable() {
  if (ids.length === 0) return '';
  const rows = [];
  const each = (label, fn) =>
    rows.push([label, ...ids.map((id) => (T(id)?.ours ? fn(id) : failure(T(id))))]);
  // #17.5: the table leads with how far each figure is from the physical limit.
  each(
    '**durable `save()` ÷ raw durable write** (write, fsync, rename, fsync folder)',
    (id) =>
      `**${limitRatio(ourSave(id), med(T(id).disk.write))}** (${ms(ourSave(id))} vs ${ms(med(T(id).disk.write))})`,
  );
  each(
    '**`restore()` ÷ raw read** (the same file into fresh memory)',
    (id) =>
      `**${limitRatio(ourRestore(id), med(T(id).ours.rawRead))}** (${ms(ourRestore(id))} vs ${ms(med(T(id).ours.rawRead))})`,
  );
  each(
    '**our durable `save()`**',
    (id) => `**${ms(ourSave(id))}** (${rate(med(T(id).ours.rawBytes), ourSave(id))})`,
  );
  each(
    '**main-thread pause of a due `sync()`**',
    (id) => `**${ms(med(T(id).ours.syncPause))}** (first: ${ms(med(T(id).ours.syncPauseFirst))})`,
  );
  each('**our `restore()`**', (id) => `**${ms(ourRestore(id))}**`);
  each('format 1 `restore()` (0.1: v8 structured clone + brotli)', (id) =>
    has(med(T(id).ours.restoreV1))
      ? `${ms(med(T(id).ours.restoreV1))} · ${ratio(med(T(id).ours.restoreV1), ourRestore(id))}`
      : 'n/a',
  );
  each('file size', (id) => `${bytes(med(T(id).ours.bytes))} (${T(id).ours.codec?.[0] ?? '?'})`);
  each('seed: pickle 2 + gzip 9, save', (id) =>
    seedOk(id)
      ? `${ms(med(W(id).seed.save))} · ${ratio(med(W(id).seed.save), ourSave(id))}${nRuns(W(id).seed.save)}`
      : `n/a: ${W(id)?.seed?.error ?? W(id)?.seed?.skipped}`,
  );
  each(
    '`JSON.stringify` + `writeFileSync`',
    (id) =>
      `${ms(med(T(id).json.save))} · ${ratio(med(T(id).json.save), ourSave(id))}${nRuns(T(id).json.save)}`,
  );
  each(
    '`gzipSync(v8.serialize())` + `writeFileSync`',
    (id) =>
      `${ms(med(T(id).v8gzip.save))} · ${ratio(med(T(id).v8gzip.save), ourSave(id))}${nRuns(T(id).v8gzip.save)}`,
  );
  each(
    'disk: durable write of as many bytes',
    (id) =>
      `${ms(med(T(id).disk.write))} · ${ratio(med(T(id).disk.write), ourSave(id))} (${rate(med(T(id).ours.bytes), med(T(id).disk.write))})`,
  );
  each('seed load', (id) =>
    seedOk(id)
      ? `${ms(med(W(id).seed.load))} · ${ratio(med(W(id).seed.load), ourRestore(id))}${nRuns(W(id).seed.load)}`
      : 'n/a',
  );
  each(
    'JSON load (`JSON.parse` + revive)',
    (id) =>
      `${ms(med(T(id).json.load))} · ${ratio(med(T(id).json.load), ourRestore(id))}${nRuns(T(id).json.load)}`,
  );
  each(
    'v8 + gunzip load',
    (id) =>
      `${ms(med(T(id).v8gzip.load))} · ${ratio(med(T(id).v8gzip.load), ourRestore(id))}${nRuns(T(id).v8gzip.load)}`,
  );
  if (!args['no-memory']) {
    each('peak extra memory: `save()` / `sync()`', (id) => {
      const m = W(id).memOurs;
      if (m?.first === undefined) return `n/a: ${m?.error ?? '?'}`;
      return `${bytes(m.first.peak)} / ${bytes(m.syncFirst?.peak)}`;
    });
  }
  return table(['', ...ids.map(titleOf)], rows);
}

function syncLine() {
  const s = results.sync;
  if (s === undefined) return '';
  if (s.error !== undefined) return `\`sync()\` not due: failed (${s.error})`;
  const m = s.median;
  return (
    `\`sync()\` when not due: **${m.sync.toFixed(2)} ns** per loop step calling it, against ` +
    `${m.empty.toFixed(2)} ns for the same loop without it and ${m.clock.toFixed(1)} ns with a ` +
    '`Date.now()` check instead.'
  );
}

// ---------------------------------------------------------------------------------------
// Targets (DESIGN.md), judged on the medians of this run

function targets() {
  const rows = [];
  const add = (target, measured, ok) =>
    rows.push([target, measured, ok === undefined ? '–' : ok ? '✓' : '✗']);
  const s = results.sync?.median;
  if (s !== undefined)
    add(
      '`sync()` not due: under 5 ns per call',
      `${s.sync.toFixed(2)} ns (loop included)`,
      s.sync < 5,
    );
  const t1 = T('S1')?.ours;
  if (t1 !== undefined) {
    const save = ourSave('S1');
    const gbs = med(t1.rawBytes) / save / 1e6;
    add(
      'S1 durable save ≥ 0.8 GB/s',
      `${gbs.toFixed(2)} GB/s (${ms(save)} for ${bytes(med(t1.rawBytes))}; fastest save ` +
        `${(med(t1.rawBytes) / Math.min(...t1.saveFirst, ...t1.saveRepeat) / 1e6).toFixed(2)} GB/s)`,
      gbs >= 0.8,
    );
    if (seedOk('S1')) {
      const r = med(W('S1').seed.save) / save;
      add(
        'S1 save ≥ 50× faster than the seed',
        `${r.toFixed(0)}× (${ms(med(W('S1').seed.save))} vs ${ms(save)})`,
        r >= 50,
      );
    } else add('S1 save ≥ 50× faster than the seed', 'seed not measured', undefined);
    const raw = med(T('S1').disk.write);
    // The disk is bimodal (see the method): the fastest of each side, where neither drew a
    // slow round, shows what the save itself costs next to the median's verdict.
    const fastest = (ours, limit) =>
      has(fastestOf(ours)) && has(fastestOf(limit))
        ? `; fastest ${ms(fastestOf(ours))} vs ${ms(fastestOf(limit))}: ${limitRatio(fastestOf(ours), fastestOf(limit))}`
        : '';
    add(
      'S1 durable save ≤ 1.15× a raw durable write of as many bytes (#17.1)',
      `${limitRatio(save, raw)} (${ms(save)} vs ${ms(raw)})` +
        fastest([...(t1.saveFirst ?? []), ...(t1.saveRepeat ?? [])], T('S1').disk.write),
      save <= 1.15 * raw,
    );
    const read = med(t1.rawRead);
    add(
      'S1 restore at the read speed: ≤ 1.15× a raw read of the file (#17.3)',
      `${limitRatio(ourRestore('S1'), read)} (${ms(ourRestore('S1'))} vs ${ms(read)})` +
        fastest(t1.restore, t1.rawRead),
      has(read) ? ourRestore('S1') <= 1.15 * read : undefined,
    );
    const pause = med(t1.syncPause);
    const first = med(t1.syncPauseFirst);
    add(
      'S1 main-thread pause of a due `sync()` < 25 ms',
      `${ms(pause)} (a later sync)`,
      pause < 25,
    );
    add(
      '… the first `sync()` of a checkpoint',
      `${ms(first)} (its staging buffer prepared at restore)`,
      first < 25,
    );
    const restore = ourRestore('S1');
    add('S1 restore < 150 ms', ms(restore), restore < 150);
  }
  const t2 = T('S2')?.ours;
  if (t2 !== undefined) {
    const save = ourSave('S2');
    if (seedOk('S2')) {
      const r = med(W('S2').seed.save) / save;
      add(
        'S2 save ≥ 13× faster than the seed',
        `${r.toFixed(1)}× (${ms(med(W('S2').seed.save))} vs ${ms(save)})`,
        r >= 13,
      );
    } else add('S2 save ≥ 13× faster than the seed', 'seed not measured', undefined);
    const json = med(T('S2').json.save);
    add('S2 save faster than JSON + writeFileSync', `${ms(save)} vs ${ms(json)}`, save < json);
    const v8 = med(T('S2').v8gzip.save);
    add('S2 save faster than v8.serialize + gzip', `${ms(save)} vs ${ms(v8)}`, save < v8);
    const v1 = med(t2.restoreV1);
    add(
      'S2 restore ≤ 0.7× the same state restored from a format 1 file (#13.2)',
      has(v1)
        ? `${limitRatio(ourRestore('S2'), v1)} (${ms(ourRestore('S2'))} vs ${ms(v1)})`
        : 'n/a',
      has(v1) ? ourRestore('S2') <= 0.7 * v1 : undefined,
    );
  }
  if (T('S3')?.ours !== undefined) {
    const save = ourSave('S3');
    add('S3 durable save in a few ms (≤ 5 ms)', ms(save), save <= 5);
  }
  for (const id of ids) {
    if (T(id)?.ours === undefined) continue;
    add(
      `${id} restore at least as fast as save`,
      `${ms(ourRestore(id))} vs ${ms(ourSave(id))}`,
      ourRestore(id) <= ourSave(id),
    );
  }
  // "About one serialized copy": judged as at most 1.5x the encoded size, on S1 and S2 only
  // (for S3's 90 KB, fixed costs such as brotli's window dominate any ratio).
  for (const id of ids) {
    const m = W(id).memOurs;
    if (m?.first === undefined || !has(m.rawBytes)) continue;
    const judge = (peak) => (id === 'S3' ? undefined : peak <= 1.5 * m.rawBytes);
    const worst = Math.max(m.first.peak, m.repeat.peak);
    add(
      `${id} peak extra memory of \`save()\` ≤ about 1 encoded copy (≤ 1.5×)`,
      `${bytes(worst)} = ${(worst / m.rawBytes).toFixed(2)}× of ${bytes(m.rawBytes)} (one run)`,
      judge(worst),
    );
    const sync = Math.max(m.syncFirst?.peak ?? 0, m.syncRepeat?.peak ?? 0);
    add(
      `${id} peak extra memory of \`sync()\` ≤ about 1 encoded copy (≤ 1.5×)`,
      `${bytes(sync)} = ${(sync / m.rawBytes).toFixed(2)}×; ${bytes(m.syncFirst?.retained)} stays resident (one run)`,
      judge(sync),
    );
  }
  return table(['target (DESIGN.md)', 'measured (medians)', ''], rows);
}

// ---------------------------------------------------------------------------------------
// Details

function stat(label, values, note = '') {
  if (!Array.isArray(values) || values.length === 0) return [label, 'n/a', '', '', '0', note];
  return [
    label,
    ms(median(values)),
    ms(Math.min(...values)),
    ms(Math.max(...values)),
    String(values.length),
    note,
  ];
}

function details(id) {
  const w = W(id);
  const t = w.timing;
  const out = [`### ${titleOf(id)}`, ''];
  if (t?.ours === undefined) return [...out, `Failed: ${failure(t)}`, ''].join('\n');
  const o = t.ours;
  const b = t.breakdown ?? {};
  const rows = [
    stat(
      'our `save()`, first of a checkpoint',
      o.saveFirst,
      has(o.saveFirst?.[0]) ? `run 1 (the state never written before): ${ms(o.saveFirst[0])}` : '',
    ),
    stat(
      'our `save()`, third of a checkpoint',
      o.saveRepeat,
      'steady state: drops the oldest generation',
    ),
    stat('our `sync()` pause, first of a checkpoint', o.syncPauseFirst),
    stat('… until that save is durable', o.syncToDurableFirst, '`await flush()`'),
    stat('our `sync()` pause, a later one', o.syncPause),
    stat('… until that save is durable', o.syncToDurable),
    stat('our `restore()` (new Checkpoint + restore)', o.restore, 'file in the page cache'),
    stat(
      'format 1 `restore()`',
      o.restoreV1,
      'the same state as a format 1 file (v8, brotli), before or after ours by turns',
    ),
    stat('JSON save', t.json.save, `${bytes(med(t.json.bytes))}, not durable`),
    stat('JSON load', t.json.load),
    stat('v8 + gzip save', t.v8gzip.save, `${bytes(med(t.v8gzip.bytes))}, not durable`),
    stat('v8 + gzip load', t.v8gzip.load),
    stat('raw read of our file', o.rawRead, 'open, read into fresh memory, close'),
    stat(
      'disk: durable write',
      t.disk.write,
      `${bytes(med(o.bytes))}: temp, fsync, rename, fsync folder; right after each timed save` +
        (has(t.disk.fresh?.[0]) ? `; run 1's first from fresh memory: ${ms(t.disk.fresh[0])}` : ''),
    ),
  ];
  if (seedOk(id)) {
    rows.push(stat('seed save (pickle 2 + gzip 9)', w.seed.save, `${bytes(w.seed.bytes)}`));
    rows.push(stat('seed load', w.seed.load));
  } else rows.push(['seed', 'n/a', '', '', '0', w.seed?.error ?? w.seed?.skipped ?? '']);
  out.push(table(['measurement', 'median', 'min', 'max', 'runs', 'note'], rows), '');
  const part = (name) => (b[name] === undefined ? 'n/a' : ms(med(b[name])));
  if (Object.keys(b).length > 0) {
    out.push(
      `Where the time goes (each part timed alone with the library's internal modules, medians): ` +
        `**save** = encode ${part('encode')} (format 1's encoder: ${part('encodeV1')}; plain \`v8.serialize\`: ${part('v8serialize')}) + compress ${part('compress')} + CRC-32 ${part('crc')} ` +
        `(pack, i.e. compress + CRC + layout: ${part('pack')}) + durable write ${part('write')}; ` +
        `**sync() pause** = encode ${part('encode')} + copy into the staging buffer ` +
        `(${part('stageFresh')} into a new buffer, ${part('stageReused')} into a reused one); ` +
        `**restore** ≈ read ${part('read')} + verify ${part('verify')} + decompress ` +
        `${part('decompress')} + decode ${part('decode')}. Encoded size ${bytes(med(o.rawBytes))}, ` +
        `stored ${bytes(med(o.bytes))} (codec ${o.codec?.[0] ?? '?'}).`,
      '',
    );
  }
  const se = t.sideEffect;
  if (se !== undefined && se.before !== se.after) {
    out.push(
      `**Side effect:** after our saves, \`v8.serialize(state)\` of the very same values takes ` +
        `${se.after.toLocaleString('en-US')} bytes instead of ${se.before.toLocaleString('en-US')} ` +
        'before them: a save changed how V8 ' +
        "stores values of the caller's state (e.g. an array of small integers turned into an array " +
        "of doubles, or a packed array into a holey one), so later saves encode more bytes and the caller's own code may run slower.",
      '',
    );
  }
  const m = w.memOurs;
  if (m?.first !== undefined) {
    const v = w.memV8;
    out.push(
      `Peak extra memory (resident set, all threads): \`save()\` ${bytes(m.first.peak)} the first ` +
        `time (${bytes(m.first.heapRetained)} of it JS heap kept after: the object-identity map, ` +
        `reused by later saves), ${bytes(m.repeat.peak)} later; \`sync()\` + flush ${bytes(m.syncFirst?.peak)} the ` +
        `first time, ${bytes(m.syncRepeat?.peak)} later; the first one leaves ` +
        `${bytes(m.syncFirst?.retained)} resident (its staging buffer, kept for the next). For comparison ` +
        `\`writeFileSync(gzipSync(v8.serialize(state)))\`: ${v?.first ? bytes(v.first.peak) : 'n/a'}.`,
      '',
    );
  } else if (m !== undefined) out.push(`Peak memory: n/a (${m.error ?? '?'})`, '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------
// The report

const cpus = os.cpus();
const rebuilt = distStamp() !== distAtStart;
const command =
  process.env.npm_lifecycle_event === 'bench'
    ? `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
    : `node --expose-gc bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim();
const machine = [
  `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores`,
  `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM`,
  `${os.type()} ${os.release()}`,
  `temp folder ${os.tmpdir()}`,
  `load average (1 min) ${loadAtStart.toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end`,
].join(', ');
const versions = [`Node ${process.version}`];
if (py.python) versions.push(`Python ${py.python}${py.numpy ? `, numpy ${py.numpy}` : ''}`);

const summary = [
  `Medians of ${args.runs} runs${args.quick ? ' (quick: workloads a tenth of the size)' : ''}, ` +
    `measured ${new Date().toISOString().slice(0, 10)} with ${versions.join(', ')} on ${cpus[0]?.model ?? '?'} ` +
    `(${cpus.length} cores). Baselines: their time · how many times our time (higher is better for us).`,
  '',
  summaryTable(),
  '',
  syncLine(),
].join('\n');

const report = [
  '# Benchmarks',
  '',
  `- date: ${new Date().toISOString()}`,
  `- command: \`${command}\` (${elapsed.toFixed(0)} s)`,
  `- versions: ${versions.join(', ')}; library at ${commit ?? '?'}${dirty ? ' with uncommitted changes in src/' : ''}`,
  `- machine: ${machine}`,
  ...(rebuilt
    ? ['', 'dist/ was rebuilt while this ran; every figure is of the copy taken at its start.']
    : []),
  '',
  '## Summary',
  '',
  summary,
  '',
  '## Targets',
  '',
  targets(),
  '',
  '## Details',
  '',
  ...ids.map(details),
  '## How it is measured',
  '',
  '- Workloads (`bench/common.mjs`, the Python twins in `bench/seed.py`): **S1** a Float64Array of 12.5M random',
  '  doubles and a Float32Array of 1M, plus scalars (104 MB); **S2** 200k objects (id, name, kind, a random',
  '  score, a `Date`, a 2-entry `Map`), a `Set` of 50k strings, five BigInts and a cycle; **S3** the README',
  "  example's `{ primes, candidate }` with the first 100k primes.",
  '- Every workload runs in fresh child processes; every measured run writes into a fresh temp folder,',
  '  after a full GC. A warm-up save of a tiny state first starts the background thread. After the',
  '  bench deletes its files, a tiny fsync commits the journal outside any timing.',
  '- **Our `save()`**: `new Checkpoint({ name, dir, interval: 0, signals: false, log: false })`,',
  '  `restore(state)`, then three `save()` calls (durable when they return: temp file, fsync, rename,',
  '  fsync of the folder): the first and the third are timed (from the third on, a save also drops the',
  '  oldest generation, as in a long run with `keep: 2`) and the summary pools both. The first is',
  '  timed once the resident set has stopped growing after `restore()` (interval 0 has the background',
  "  thread fault in sync()'s staging buffer then; a computation works a while before its first save).",
  '  **`sync()` pause**: the time of the `sync()`',
  '  call alone (interval 0: always due), each after the same start as the durable writes (below);',
  '  the background thread then compresses and writes, which',
  '  `await flush()` waits for outside the timing. The staging buffer the first `sync()` copies into',
  '  is allocated at `restore()` and its pages faulted in by the background thread; later ones reuse it. **`restore()`**: a new Checkpoint on the same folder and',
  '  `restore(initial)`, in the same process, so the file comes from the page cache (so do the',
  "  baselines' loads). Each restored state is checked against the original.",
  '- **Compressibility verdicts** (#17.1): a chunk found not worth compressing is sampled again',
  '  only every 8th save of the same memory, so in S1 (random doubles) the sample is skipped in most',
  "  saves, and in the breakdown's compress step, which sees the same arrays.",
  '- **Format 1 `restore()`** (#13.2): the file our save just wrote, rewritten as format 1 (the state',
  '  by `v8.serialize`, brotli, version field 1: what 0.1 wrote) in a fresh folder and restored by',
  '  this library in the same process, before ours in odd runs and after it in even ones. Only where',
  '  `node:v8` serializes (not Bun).',
  '- **Baselines** run in the same process and the same runs, on a second copy of the state that our',
  '  library never touched (see "side effect" above, where it applies). `JSON.stringify` +',
  '  `writeFileSync` is the hand-rolled checkpoint, made to keep the data: typed arrays go through',
  '  `Array.from`, Maps through `Object.fromEntries`, the Set to an array, BigInts to strings, the cycle',
  '  is dropped, and its load revives all of them; those conversions are timed, since such code has',
  '  to do them. (`JSON.stringify` of the raw S1 typed arrays would write them as index-keyed objects,',
  '  18 s in MEASUREMENTS.md, and restore them as plain objects.) `writeFileSync(path, gzipSync(v8.serialize(state)))`',
  '  uses the default gzip level (6). Neither baseline fsyncs: they are not durable, ours is (their',
  '  files are fsynced after the timing, so their dirty pages do not burden the next measurement).',
  '- **Physical limits** (#17.5): the raw durable write is `open` + `write` + `fsync` + `close` +',
  '  `rename` + `fsync` of the folder of as many random bytes as our file, in a fresh folder, run',
  '  right after each of our two timed saves in every run (so as many samples as ours). The first',
  "  save of run 1 writes the state's memory for the first time, which the kernel reads slowly here",
  '  (a durable 100 MB write from fresh random bytes: median 201 ms, against 71 ms from bytes written',
  '  once before, 9 alternating rounds); so the raw write after it writes fresh random bytes too. The raw',
  '  read opens our just-restored file and reads it into',
  "  fresh memory, right after our restore. The ratios divide our median by the limit's median",
  '  from the same alternating runs, so drift of the disk hits both sides.',
  "  This VM's disk is bimodal: a durable 100 MB write takes 75-115 ms or 210-470 ms, on either",
  "  side, in any round, so one run's S1 save ratio moves with how many slow rounds each side drew:",
  '  on 2026-12-05, 1.13× and 1.17× (one raw write a run), 1.14× and 1.31× (one after each timed',
  '  save) in four full runs, and 1.10×, 1.07×, 0.99× and 0.50× in four runs of',
  '  `bench/workload.mjs S1 --runs 5` alone; since a save hands its pages to the disk while it',
  '  writes them (`src/store/writeback.ts`) and run 1 is paired with fresh memory, 0.99× and 1.13× in',
  '  two full runs. Reads drift alike: S1 restore ÷ raw read 0.89-1.20× over six full runs that day.',
  '  So the S1 targets also set the fastest of each side against each other: runs where neither',
  '  drew a slow round, which shows what the save or restore itself costs.',
  '- **Same start for every timed durable write** (#17.1), ours and the raw one: the bytes about to be',
  '  written are read once (a live state is warm, so is the raw buffer), then as many bytes of page',
  '  cache are written, fsynced and deleted. On these VMs a 100 MB `write()` into pages freed a moment',
  '  ago takes 15-50 ms, into pages free for long 150-500 ms; before this step the raw write ran right',
  "  after the breakdown's frees (fast pages) and our saves did not.",
  '- **Restore vs raw read** (#17.3): on these VMs a page has two first touches, each a fault of',
  '  its own: one from user space and one from the kernel (a `read()` into it, a `write()` from',
  '  it). Measured on one 100 MB buffer: `read()` into fresh memory 365-376 ms, then a checksum',
  '  of it 167-226 ms, then the same checksum again 19-30 ms; a durable `write()` of a buffer only',
  '  user code had touched 266-342 ms, of one the kernel had read once before 96-207 ms (4 rounds',
  '  each, alternating, the page cache levelled before each as below). Restore used to read the file into',
  '  the arrays it returns and then checksum them: both faults, 1.53× the raw read (which takes',
  "  only the kernel's). It now reads 1 MiB at a time into one reused buffer, checksums it while",
  '  it is in cache and copies it into place: user-space faults only, 1.05-1.11× the raw read.',
  "  The kernel's fault on those pages then comes with the first `save()` that writes the",
  '  restored arrays straight from them (restore + first save of S1, alternating builds under',
  '  load: 760-833 + 373-638 ms against 1008-1134 + 148-239 ms before; the sum moved, it did not',
  '  shrink). A `sync()` writes from its own staging buffer, so a restore followed by syncs',
  '  gains the whole difference. With transparent huge pages for large buffers',
  '  (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, glibc >= 2.35) faults are rare and both ways',
  '  restore S1 in 50-60 ms. The breakdowns below still time the read and the checksum apart, as',
  '  restore did before.',
  "- **The seed's method** runs in `python3 bench/seed.py`: `pickle.dump(obj, gzip.open(path, 'wb', 9), 2)`",
  '  and `pickle.load(gzip.open(path))`, timed with `time.perf_counter()` inside Python.',
  `- **Slow baselines** stop repeating once another run would pass ${args.budget} s (\`--budget\`); their run`,
  '  count is shown when it is below the others.',
  '- **Ratios** are baseline median / our median from this same run: "12×" means 12 times our time.',
  '- **Noise**: on the VMs this was built on, a 100 MB `write()` into the page cache sometimes takes',
  '  several times longer than usual (the extra time is in `write()`, not in `fsync`; likely the host',
  '  backing fresh guest memory), so large saves can be bimodal: see min and max in the details.',
  "- **Peak extra memory** is the process's resident-set high-water mark (`VmHWM`, reset just before",
  '  the call by writing 5 to `/proc/self/clear_refs`) minus the resident set just before it, in a',
  '  fresh process per workload (Linux only). It counts every thread, the background writer included,',
  '  and all memory, JS heap or not. "Kept after" is the resident set after the call and a full GC,',
  '  minus the one before.',
  '- **`sync()` not due**: a loop that sets `state.step = i` and calls `chp.sync()` (interval `1h`),',
  '  the same loop without the call, and one with `if (Date.now() - last > 30000)`; ns per iteration,',
  `  ${results.sync?.calls?.toLocaleString('en-US') ?? '?'} iterations (the clock loop a tenth as many), medians of ${args.runs} runs.`,
  results.sync?.dueSeenAfterMs !== undefined
    ? `  A hot \`sync()\` loop with \`interval: 50\` saw its due flag after ${results.sync.dueSeenAfterMs.toFixed(0)} ms.`
    : results.sync !== undefined
      ? '  **A hot `sync()` loop with `interval: 50` never saw its due flag within 5 s.**'
      : '',
  '',
].join('\n');

process.stdout.write(`\n${report}\n`);
if (args.json !== undefined) {
  writeFileSync(args.json, JSON.stringify({ args, elapsed, python: py, results }, null, 1));
  progress(`wrote raw samples to ${args.json}`);
}
if (write) {
  writeFileSync(join(root, 'docs/benchmarks.md'), report);
  progress('wrote docs/benchmarks.md');
  const body = `\n${summary}\n\nDetails, targets and method: [docs/benchmarks.md](docs/benchmarks.md).`;
  if (writeBetweenMarkers(join(root, 'README.md'), 'bench', body)) {
    progress('updated the README between its bench markers');
  } else
    progress('README has no <!-- bench:start --> / <!-- bench:end --> markers: left untouched');
} else progress('not written (quick or partial run; pass --write to write docs/benchmarks.md)');
if (rebuilt)
  progress('note: dist/ was rebuilt during the run; measured the copy taken at its start');
progress(`done in ${elapsed.toFixed(0)} s`);
