// Shared by the benchmark parent (run.mjs) and its children (workload.mjs, sync-cost.mjs):
// argument parsing, statistics, a seeded generator, and the three workloads S1, S2, S3
// (the Python twin of the builders is in seed.py).
import {
  closeSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The built library the children measure: `../dist/`, or the snapshot of it that
 * bench/run.mjs takes at its start (env RS_BENCH_DIST), so that a rebuild by someone else
 * during a run cannot mix two versions in one report.
 */
export function distUrl(file = 'index.js') {
  const dir = process.env.RS_BENCH_DIST;
  return dir
    ? pathToFileURL(join(dir, file)).href
    : new URL(`../dist/${file}`, import.meta.url).href;
}

/** Parses `--runs N`, `--quick`, `--only A,B`, `--budget S`, flags and positionals. */
export function parseArgs(argv) {
  const args = { runs: undefined, quick: false, only: undefined, budget: 25, positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const eq = a.indexOf('=');
      if (eq >= 0) return a.slice(eq + 1);
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quick') args.quick = true;
    else if (a.startsWith('--runs')) args.runs = positiveInt(value(), '--runs');
    else if (a.startsWith('--only')) args.only = value().split(',').filter(Boolean);
    else if (a.startsWith('--budget')) args.budget = Number(value());
    else if (a.startsWith('--mode')) args.mode = value();
    else if (a.startsWith('--json')) args.json = value();
    else if (a.startsWith('--dist')) args.dist = value();
    else if (a.startsWith('--')) args[a.slice(2)] = true;
    else args.positional.push(a);
  }
  args.runs ??= args.quick ? 2 : 5;
  return args;
}

function positiveInt(text, name) {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} expects a positive integer`);
  return n;
}

export function median(values) {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const now = () => performance.now();

export function gc() {
  if (typeof globalThis.gc !== 'function') throw new Error('run node with --expose-gc');
  globalThis.gc();
  globalThis.gc();
}

export function freshDir() {
  return mkdtempSync(join(tmpdir(), 'rs-bench-'));
}

/**
 * Removes a bench folder, then commits the file system's journal with a tiny fsync'd file,
 * so the cost of freeing big files (discard on ext4 mounted with it) lands here, outside
 * any timing, rather than in the next measured fsync.
 */
export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  const marker = join(tmpdir(), `rs-bench-settle-${process.pid}`);
  const fd = openSync(marker, 'w');
  try {
    writeSync(fd, 'x');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
    rmSync(marker, { force: true });
  }
}

/** The physical limit of a durable save: `bytes` written by hand (temp, fsync, rename, fsync folder); ms. */
export function rawDurableWrite(bytes) {
  const dir = freshDir();
  const t = now();
  const fd = openSync(join(dir, 'raw.tmp'), 'wx', 0o600);
  for (let at = 0; at < bytes.byteLength; ) at += writeSync(fd, bytes, at);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(join(dir, 'raw.tmp'), join(dir, 'raw'));
  const dirFd = openSync(dir, 'r');
  fsyncSync(dirFd);
  closeSync(dirFd);
  const ms = now() - t;
  removeDir(dir);
  return ms;
}

/** Lines a child prints for the parent start with this; everything else is progress. */
export const RESULT_PREFIX = '@@result ';

/** sfc32: a small seeded generator, so every run builds the same state. */
export function generator(seed = 1) {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next();
  // 53 random bits, like Math.random(): random doubles in [0, 1), nearly incompressible.
  const float = () => (next() * 2 ** 21 + (next() >>> 11)) / 2 ** 53;
  return { next, float };
}

/** Sizes of the workloads: full, and smaller ones for `--quick`. */
export function sizes(quick) {
  return quick
    ? { f64: 1_250_000, f32: 100_000, objects: 20_000, setSize: 5_000, primes: 10_000 }
    : { f64: 12_500_000, f32: 1_000_000, objects: 200_000, setSize: 50_000, primes: 100_000 };
}

const KINDS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta'];
const T0 = Date.UTC(2024, 0, 1);

/** S1: typed arrays (100 MB at full size) and a few scalars. */
function buildS1(n) {
  const { float } = generator(1);
  const weights = new Float64Array(n.f64);
  for (let i = 0; i < weights.length; i++) weights[i] = float();
  const bias = new Float32Array(n.f32);
  for (let i = 0; i < bias.length; i++) bias[i] = float();
  return { weights, bias, step: 123_456, loss: 0.0421, name: 'run-7', done: false };
}

/** S2: small objects with a Date and a Map each, a Set of strings, BigInts, a cycle. */
function buildS2(n) {
  const { float, next } = generator(2);
  const items = new Array(n.objects);
  for (let i = 0; i < n.objects; i++) {
    items[i] = {
      id: i,
      name: `item-${i}`,
      kind: KINDS[i % KINDS.length],
      score: float(),
      created: new Date(T0 + i * 1000),
      tags: new Map([
        ['rank', i % 1000],
        ['group', `g${i % 97}`],
      ]),
    };
  }
  const seen = new Set();
  for (let i = 0; i < n.setSize; i++) seen.add(`url-${i}-${next().toString(16)}`);
  const big = [2n ** 64n + 1n, -(3n ** 80n), 10n ** 30n + 7n, 2n ** 200n - 1n, 123_456_789n];
  const state = { items, seen, big, cursor: n.objects, meta: { label: 'S2' } };
  state.meta.owner = state; // a cycle
  return state;
}

/** S3: the primes state of the README example, with the first `n` primes. */
function buildS3(n) {
  const count = n.primes;
  let limit = 1000;
  while (limit / Math.log(limit) < count * 1.2) limit *= 2;
  const composite = new Uint8Array(limit + 1);
  const primes = [];
  for (let i = 2; i <= limit && primes.length < count; i++) {
    if (composite[i]) continue;
    primes.push(i);
    for (let j = i * i; j <= limit; j += i) composite[j] = 1;
  }
  return { primes, candidate: primes[primes.length - 1] };
}

/**
 * The obvious hand-rolled JSON checkpoint of each workload: convert what JSON cannot hold
 * (typed arrays, Map, Set, BigInt, Date, the cycle) on save and back on load. Both
 * conversions are part of the timed save and load: a user's own code would do them.
 */
const JSON_CODECS = {
  S1: {
    to: (s) => ({ ...s, weights: Array.from(s.weights), bias: Array.from(s.bias) }),
    from: (o) => ({ ...o, weights: new Float64Array(o.weights), bias: new Float32Array(o.bias) }),
  },
  S2: {
    to: (s) => ({
      items: s.items.map((it) => ({ ...it, tags: Object.fromEntries(it.tags) })),
      seen: [...s.seen],
      big: s.big.map(String),
      cursor: s.cursor,
      meta: { label: s.meta.label },
    }),
    from: (o) => {
      const state = {
        items: o.items.map((it) => ({
          ...it,
          created: new Date(it.created),
          tags: new Map(Object.entries(it.tags)),
        })),
        seen: new Set(o.seen),
        big: o.big.map(BigInt),
        cursor: o.cursor,
        meta: o.meta,
      };
      state.meta.owner = state;
      return state;
    },
  },
  S3: { to: (s) => s, from: (o) => o },
};

/** Restore placeholders, like the `initial` of a real program. */
const INITIAL = {
  S1: () => ({
    weights: new Float64Array(0),
    bias: new Float32Array(0),
    step: 0,
    loss: 1,
    name: '',
    done: false,
  }),
  S2: () => ({ items: [], seen: new Set(), big: [], cursor: 0, meta: {} }),
  S3: () => ({ primes: [2], candidate: 2 }),
};

export const WORKLOADS = {
  S1: { title: 'S1: 100 MB of typed arrays', build: buildS1 },
  S2: { title: 'S2: 200k small objects (Date, Map each)', build: buildS2 },
  S3: { title: 'S3: primes state, 100k ints', build: buildS3 },
};

export function workload(id, quick) {
  const w = WORKLOADS[id];
  if (w === undefined) throw new Error(`unknown workload ${id} (expected S1, S2 or S3)`);
  return {
    id,
    title: w.title,
    state: w.build(sizes(quick)),
    initial: INITIAL[id],
    json: JSON_CODECS[id],
  };
}

/** Throws if `restored` is not `original` in the respects that matter for each workload. */
export function verify(id, original, restored) {
  const fail = (what) => {
    throw new Error(`${id}: restored state differs from the saved one (${what})`);
  };
  if (id === 'S1') {
    for (const key of ['weights', 'bias']) {
      const a = original[key];
      const b = restored[key];
      if (b?.constructor !== a.constructor || b.length !== a.length) fail(key);
      for (let i = 0; i < a.length; i += 9973) if (!Object.is(a[i], b[i])) fail(`${key}[${i}]`);
      if (!Object.is(a[a.length - 1], b[b.length - 1])) fail(`${key} last`);
    }
    if (restored.step !== original.step || restored.name !== original.name) fail('scalars');
  } else if (id === 'S2') {
    if (restored.items.length !== original.items.length) fail('items.length');
    for (let i = 0; i < original.items.length; i += 997) {
      const a = original.items[i];
      const b = restored.items[i];
      if (b.name !== a.name || b.score !== a.score) fail(`items[${i}]`);
      if (!(b.created instanceof Date) || b.created.getTime() !== a.created.getTime()) {
        fail(`items[${i}].created`);
      }
      if (!(b.tags instanceof Map) || b.tags.get('group') !== a.tags.get('group')) {
        fail(`items[${i}].tags`);
      }
    }
    if (!(restored.seen instanceof Set) || restored.seen.size !== original.seen.size) fail('seen');
    if (restored.big.some((v, i) => v !== original.big[i])) fail('big');
    if (restored.meta.owner !== restored) fail('cycle');
  } else {
    if (restored.primes.length !== original.primes.length) fail('primes.length');
    if (restored.primes.some((p, i) => p !== original.primes[i])) fail('primes');
    if (restored.candidate !== original.candidate) fail('candidate');
  }
}

/**
 * Writes `body` between `<!-- <marker>:start -->` and `<!-- <marker>:end -->` in the file at
 * `path`; returns false (and leaves it) when the markers are missing.
 */
export function writeBetweenMarkers(path, marker, body) {
  const text = readFileSync(path, 'utf8');
  const start = `<!-- ${marker}:start -->`;
  const end = `<!-- ${marker}:end -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) return false;
  writeFileSync(path, `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`);
  return true;
}

/**
 * A small report of one benchmark script: its table, the machine, and its method (the
 * script's leading comment lines), written to docs/<file>; the table also goes into the
 * README between `<!-- <marker>:start/end -->`.
 */
export function writeSmallReport(script, title, file, marker, table) {
  const root = new URL('..', import.meta.url).pathname;
  const method = readFileSync(script, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('//'))
    .map((l) => l.slice(3))
    .join('\n');
  const machine = `${os.cpus()[0]?.model} (${os.cpus().length} cores), Node ${process.version}`;
  writeFileSync(
    `${root}docs/${file}`,
    `# ${title}\n\n${table}\n\nMachine: ${machine}.\n\n## Method\n\n\`\`\`\n${method}\n\`\`\`\n`,
  );
  if (!writeBetweenMarkers(`${root}README.md`, marker, table)) {
    process.stderr.write(`README.md has no ${marker} markers: left untouched\n`);
  }
}
