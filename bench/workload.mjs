// One workload in a process of its own, so big allocations of one never weigh on another:
//   node --expose-gc bench/workload.mjs S1 [--runs 5] [--quick] [--budget 25]
//   node --expose-gc bench/workload.mjs S1 --mode memory-ours | memory-v8gzip
//   <runtime> bench/workload.mjs S1 --mode ours   our timings alone, no node:v8/zlib baselines
//                                                 (Bun has no v8.serialize): bench/runtimes.mjs
// Prints progress on stderr and one `@@result {json}` line on stdout for bench/run.mjs.
import { randomFillSync } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import v8 from 'node:v8';
import zlib from 'node:zlib';
import {
  distUrl,
  freshDir,
  gc,
  median,
  now,
  parseArgs,
  RESULT_PREFIX,
  removeDir,
  verify,
  workload,
} from './common.mjs';

const { Checkpoint } = await import(distUrl());
const args = parseArgs(process.argv.slice(2));
const id = args.positional[0];
const log = (message) => process.stderr.write(`  [${id}] ${message}\n`);
const options = (dir, interval = 0) => ({
  name: 'bench',
  dir,
  interval,
  signals: false,
  log: false,
});

/**
 * Puts the machine in the same state before every timed durable write, ours and the raw
 * one alike (#17.1): the bytes about to be written are read once (a live computation's
 * state is warm, and so is the raw write's buffer), and as many bytes of page cache are
 * written, fsync'd and deleted, so the write that follows takes recently freed pages.
 * Measured on these VMs: writing 100 MB into pages freed a moment ago takes 15-50 ms, into
 * pages long free 150-500 ms; without this, whichever side ran after the other's big frees
 * (gc of the breakdown's buffers, a removed folder) was measured on the fast pages.
 */
function level(sources, bytes, scratch) {
  // As bytes: Deno's zlib.crc32 takes no other typed array.
  for (const view of sources)
    zlib.crc32(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  const dir = freshDir();
  const fd = openSync(join(dir, 'level.bin'), 'w');
  for (let done = 0; done < bytes; ) {
    done += writeSync(fd, scratch, 0, Math.min(scratch.byteLength, bytes - done));
  }
  fsyncSync(fd);
  closeSync(fd);
  removeDir(dir);
  gc();
}

/** Waits (at most 5 s) until the resident set stops growing for 300 ms. */
async function residentSettled() {
  let last = residentKiB('VmRSS');
  for (let stable = 0, waited = 0; stable < 3 && waited < 5000; waited += 100) {
    await sleep(100);
    const rss = residentKiB('VmRSS');
    stable = rss - last < 1024 ? stable + 1 : 0;
    last = rss;
  }
}

/** The typed arrays at the top of a workload's state: the bytes a save of S1 writes. */
const viewsOf = (state) => Object.values(state).filter((v) => ArrayBuffer.isView(v));

/** Forces a file's dirty pages to disk outside a timed region, so they burden no later run. */
function settle(path) {
  const fd = openSync(path, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

// ---------------------------------------------------------------------------------------
// Timings

/** Our save, sync pause, restore (in a fresh folder); returns one sample of each. */
async function measureOurs(w, prepare, run = 0, twin = undefined, limit = undefined) {
  const sample = {};
  const dir = freshDir();
  gc();
  const chp = new Checkpoint(options(dir));
  chp.restore(w.state); // nothing saved yet: tracks w.state itself
  // With interval 0, restore() has the background thread fault in sync()'s staging buffer
  // (#17.2). A computation works a while before its first save; the bench waits for that
  // preparation to end, else it would take the free pages level() just made (see level).
  await residentSettled();
  prepare();
  let t = now();
  chp.save(); // the first save of this checkpoint
  sample.saveFirst = now() - t;
  // The physical limit right after each timed save, so each has its own (#17.1).
  // In run 0 the state's memory had never been written to a file before this save.
  sample.limitFirst = limit?.(statSync(chp.location).size, run === 0);
  chp.save(); // untimed: from the next one on, each save also drops the oldest generation
  prepare();
  t = now();
  chp.save(); // the steady state of a long computation (keep: 2)
  sample.saveRepeat = now() - t;
  sample.limitRepeat = limit?.(statSync(chp.location).size);

  // interval 0: every sync() is due. Time the call itself (the main-thread pause), then
  // wait outside the timing until the background write is durable.
  for (const [pause, durable] of [
    ['syncPauseFirst', 'syncToDurableFirst'], // the first sync() of a checkpoint
    ['syncPause', 'syncToDurable'], // a later one, once the first has landed
  ]) {
    prepare(); // the same start as every timed durable write (ends with a gc)
    t = now();
    const started = chp.sync();
    sample[pause] = now() - t;
    await chp.flush();
    sample[durable] = now() - t;
    if (!started) throw new Error('sync() with interval 0 did not save');
  }
  const location = chp.location;
  sample.bytes = statSync(location).size;
  const info = chp.info;
  sample.rawBytes = info?.rawBytes;
  sample.codec = info?.codec;
  chp.close();

  // Restore in the same process (new Checkpoint + restore): the file is in the page cache.
  // #13.2: the same state as a format 1 file (0.1's v8 structured clone), restored by this
  // library too, before or after ours by turns so drift hits both alike.
  const dirV1 = twin?.(chp.location);
  const restoreFrom = (from) => {
    gc();
    const t0 = now();
    const c = new Checkpoint(options(from));
    const restored = c.restore(w.initial());
    const ms = now() - t0;
    if (!c.restored) throw new Error('restore() found nothing to restore');
    verify(w.id, w.state, restored);
    c.close();
    return ms;
  };
  if (dirV1 !== undefined && run % 2 === 1) sample.restoreV1 = restoreFrom(dirV1);
  sample.restore = restoreFrom(dir);
  // The physical limit of a restore, right after ours: the same file read into fresh memory.
  gc();
  sample.rawRead = rawRead(location);
  if (dirV1 !== undefined && run % 2 === 0) sample.restoreV1 = restoreFrom(dirV1);
  if (dirV1 !== undefined) removeDir(dirV1);
  removeDir(dir);
  return sample;
}

/**
 * The file at `location` rewritten as format 1 (#13.1: the state by node:v8, the version
 * field 1, both checksums recomputed), under the same name in a fresh folder; returns the
 * folder. Undefined where the library's internals or node:v8 are missing (Bun).
 */
function formatOneTwin(lib, location) {
  if (
    ![lib.unpackCheckpoint, lib.packCheckpoint, lib.encodeV8State].every(
      (f) => typeof f === 'function',
    )
  )
    return undefined;
  const { meta, envelope } = lib.unpackCheckpoint(readFileSync(location), location);
  // Brotli: format 1 was written with 0.1's default codec.
  const file = Buffer.concat(lib.packCheckpoint(meta, lib.encodeV8State(envelope), 'brotli'));
  file.writeUInt16LE(1, 8);
  const headerLength = file.readUInt32LE(12);
  const crc = (from, to) => zlib.crc32(file.subarray(from, to));
  file.writeUInt32LE(zlib.crc32(file.subarray(20, 20 + headerLength), crc(0, 16)), 16);
  file.writeUInt32LE(crc(0, file.byteLength - 8), file.byteLength - 8);
  const dir = freshDir();
  const out = join(dir, basename(location));
  writeFileSync(out, file);
  settle(out);
  return dir;
}

/** Bytes our encoder makes of `state` (where node:v8 is missing, as on Bun); 1 MiB if unknown. */
function encodedSize(state, lib) {
  if (typeof lib.encodeState !== 'function') return 1024 ** 2;
  const { structure, segments } = lib.encodeState({ state });
  return segments.reduce((sum, s) => sum + s.byteLength, structure.byteLength);
}

/** Where our save and restore spend their time, using the library's internal modules. */
async function loadInternals() {
  const lib = {};
  for (const module of [
    'codec/serializer',
    'codec/container',
    'codec/v8-state',
    'codec/compression',
    'codec/checksum',
    'writer/staging',
    'index',
  ]) {
    try {
      Object.assign(lib, await import(distUrl(`${module}.js`)));
    } catch (err) {
      log(`breakdown: cannot load dist/${module}.js (${err.message})`);
    }
  }
  return lib;
}

/** Times `fn` into `sample[name]` when every function it needs exists; else skips it. */
function step(sample, name, needs, fn) {
  if (!needs.every((f) => typeof f === 'function')) return undefined;
  try {
    const t = now();
    const value = fn();
    sample[name] = now() - t;
    return value;
  } catch (err) {
    log(`breakdown: ${name} skipped (${err.message})`);
    return undefined;
  }
}

function measureBreakdown(w, lib) {
  const sample = {};
  const dir = freshDir();
  const envelope = { state: w.state, random: new lib.Random(1).getState(), tracked: {} };
  const at = new Date().toISOString();
  const meta = { name: 'bench', source: {}, createdAt: at, savedAt: at, saves: 1 };
  Object.assign(meta, { library: 'bench', node: process.version, host: 'bench', pid: 1 });
  const descriptor = { name: 'bench', keep: 2, compression: 'brotli', meta };
  gc();
  step(sample, 'v8serialize', [v8.serialize], () => v8.serialize(w.state));
  gc();
  // #13.2: format 1's encoder (0.1's validating walk, then v8.serialize), for the same envelope.
  step(sample, 'encodeV1', [lib.encodeV8State], () => lib.encodeV8State(envelope));
  gc();
  const encoded = step(sample, 'encode', [lib.encodeState], () => lib.encodeState(envelope));
  if (encoded === undefined) return sample;
  const chunks = [encoded.structure, ...encoded.segments];
  const { stageSnapshot: stage, compressChunk, crc32, packCheckpoint, fileStore } = lib;
  const staged = step(sample, 'stageFresh', [stage], () => stage(undefined, descriptor, encoded));
  step(sample, 'stageReused', [stage], () => stage(staged, descriptor, encoded));
  step(sample, 'compress', [compressChunk], () => {
    for (const chunk of chunks) compressChunk(chunk, 'brotli');
  });
  const parts = step(sample, 'pack', [packCheckpoint], () =>
    packCheckpoint(meta, encoded, 'brotli'),
  );
  step(sample, 'crc', [crc32], () => {
    let crc = 0;
    for (const chunk of chunks) crc = crc32(chunk, crc);
  });
  const store = fileStore(dir);
  if (parts !== undefined)
    step(sample, 'write', [store.write], () => store.write('bench', parts, 2));

  // Restore side, piece by piece: read the bytes, verify, decompress, decode.
  const location = store.locate('bench');
  if (parts === undefined) return sample;
  gc();
  const file = step(sample, 'read', [readFileSync], () => readFileSync(location));
  step(sample, 'verify', [crc32], () => crc32(file.subarray(0, file.byteLength - 8)));
  const pieces = step(sample, 'decompress', [lib.readHeader, lib.decompressChunk], () => {
    const { header, bodyOffset } = lib.readHeader(file, location);
    let offset = bodyOffset;
    return header.chunks.map(([codec, stored, raw]) => {
      const bytes = lib.decompressChunk(codec, file.subarray(offset, offset + stored), raw);
      offset += stored + ((8 - (stored % 8)) % 8);
      return bytes;
    });
  });
  if (pieces !== undefined) {
    const [structure, ...rest] = pieces;
    const segments = rest.map((s) => s.buffer.slice(s.byteOffset, s.byteOffset + s.byteLength));
    gc();
    step(sample, 'decode', [lib.decodeState], () => lib.decodeState(structure, segments));
  }
  removeDir(dir);
  return sample;
}

/** `writeFileSync(path, gzipSync(v8.serialize(state)))`, and back. Not durable (no fsync). */
function measureV8Gzip(w) {
  const dir = freshDir();
  const path = join(dir, 'state.v8.gz');
  gc();
  let t = now();
  writeFileSync(path, zlib.gzipSync(v8.serialize(w.state)));
  const save = now() - t;
  settle(path);
  gc();
  t = now();
  const restored = v8.deserialize(zlib.gunzipSync(readFileSync(path)));
  const load = now() - t;
  verify(w.id, w.state, restored);
  const bytes = statSync(path).size;
  removeDir(dir);
  return { save, load, bytes };
}

/** The hand-rolled JSON checkpoint (conversions included, see common.mjs). Not durable. */
function measureJson(w) {
  const dir = freshDir();
  const path = join(dir, 'state.json');
  gc();
  let t = now();
  writeFileSync(path, JSON.stringify(w.json.to(w.state)));
  const save = now() - t;
  settle(path);
  gc();
  t = now();
  const restored = w.json.from(JSON.parse(readFileSync(path, 'utf8')));
  const load = now() - t;
  verify(w.id, w.state, restored);
  const bytes = statSync(path).size;
  removeDir(dir);
  return { save, load, bytes };
}

/** The physical limit of a restore: open, read the whole file into fresh memory, close (ms). */
function rawRead(path) {
  const t = now();
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  const into = new Uint8Array(new ArrayBuffer(size));
  let done = 0;
  while (done < size) done += readSync(fd, into, done, size - done, done);
  closeSync(fd);
  return now() - t;
}

/**
 * The physical limit of a durable save (#17.5): `bytes` bytes written durably by hand, as
 * our save does it: temp file, write, fsync, close, rename, fsync of the folder. From
 * `payload`, levelled with `scratch` (the same buffer unless the caller wants `payload` in
 * a state of its own, see `kernelCold`).
 */
function measureDisk(bytes, payload, scratch = payload) {
  const dir = freshDir();
  const path = join(dir, 'raw.bin');
  level([payload.subarray(0, bytes)], bytes, scratch);
  const t = now();
  const fd = openSync(`${path}.tmp`, 'wx', 0o600);
  let offset = 0;
  while (offset < bytes) offset += writeSync(fd, payload, offset, bytes - offset);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(`${path}.tmp`, path);
  const dirFd = openSync(dir, 'r');
  fsyncSync(dirFd);
  closeSync(dirFd);
  const write = now() - t;
  removeDir(dir);
  return { write };
}

/** Runs `fn` up to `runs` times; a slow one stops once another run would pass `budgetMs`. */
function makeBudget(budgetMs) {
  const spent = new Map();
  return {
    allows(name, run) {
      const s = spent.get(name);
      return run === 0 || s === undefined || s.total + s.last <= budgetMs;
    },
    add(name, ms) {
      const s = spent.get(name) ?? { total: 0, last: 0 };
      s.total += ms;
      s.last = ms;
      spent.set(name, s);
    },
  };
}

function collect(samples) {
  const out = {};
  for (const sample of samples) {
    for (const [k, v] of Object.entries(sample)) (out[k] ??= []).push(v);
  }
  return out;
}

async function timings() {
  log('building state');
  const w = workload(id, args.quick);
  // Baselines get a copy our library never touches: a save of ours can change how V8 stores
  // the user's arrays (see sideEffect below), which must not slow or speed up a baseline.
  const wb = workload(id, args.quick);
  const oursOnly = args.mode === 'ours';
  const serializedBefore = oursOnly ? undefined : v8.serialize(w.state).byteLength;
  // Warm-up: starts the background thread and compiles the paths, on a tiny state.
  {
    const dir = freshDir();
    const chp = new Checkpoint(options(dir));
    chp.restore({ warm: [1, 2, 3], at: new Date(), m: new Map([[1, 2]]) });
    chp.save();
    chp.sync();
    await chp.flush();
    chp.close();
    removeDir(dir);
  }
  const lib = await loadInternals();
  const budget = makeBudget(args.budget * 1000);
  const ours = [];
  const breakdown = [];
  const v8gzip = [];
  const json = [];
  const disk = [];
  let payload;
  let sideEffect;
  for (let run = 0; run < args.runs; run++) {
    log(`run ${run + 1}/${args.runs}: ours`);
    // Sized from the last file; the first run levels with a guess (node:v8's size of it).
    const expected = ours.at(-1)?.bytes ?? serializedBefore ?? encodedSize(w.state, lib);
    if (payload === undefined || payload.byteLength < expected) {
      payload = randomFillSync(Buffer.allocUnsafe(Math.ceil(expected * 1.01)));
    }
    const twin = oursOnly ? undefined : (location) => formatOneTwin(lib, location);
    const limit = (bytes, kernelCold) => {
      // The file size varies a little between runs (a fresh seed in each checkpoint).
      if (payload.byteLength < bytes) {
        payload = randomFillSync(Buffer.allocUnsafe(Math.ceil(bytes * 1.01)));
      }
      // The first save of a state writes memory only the program has touched, which the
      // kernel reads slowly the first time on these VMs (docs/benchmarks.md, "Restore vs
      // raw read"; a durable 104 MB write here: median 201 ms from fresh random bytes, 71
      // ms from bytes written once before, 9 alternating rounds). Its limit writes such
      // memory too: fresh random bytes.
      if (!kernelCold) return measureDisk(bytes, payload);
      const { write } = measureDisk(bytes, randomFillSync(Buffer.allocUnsafe(bytes)), payload);
      return { write, fresh: write };
    };
    const sample = await measureOurs(
      w,
      () => level(viewsOf(w.state), expected, payload),
      run,
      twin,
      oursOnly ? undefined : limit,
    );
    const { limitFirst, limitRepeat, ...oursOnce } = sample;
    ours.push(oursOnce);
    if (oursOnly) continue;
    disk.push(limitFirst, limitRepeat);
    if (run === 0)
      sideEffect = { before: serializedBefore, after: v8.serialize(w.state).byteLength };
    breakdown.push(measureBreakdown(w, lib));
    for (const [name, fn, into] of [
      ['v8gzip', measureV8Gzip, v8gzip],
      ['json', measureJson, json],
    ]) {
      if (!budget.allows(name, run)) continue;
      log(`run ${run + 1}/${args.runs}: ${name}`);
      const t = now();
      into.push(fn(wb));
      budget.add(name, now() - t);
    }
  }
  return {
    id,
    quick: args.quick,
    ours: collect(ours),
    breakdown: collect(breakdown),
    v8gzip: collect(v8gzip),
    json: collect(json),
    disk: collect(disk),
    // v8.serialize(state) size before and after our saves: a change means a save of ours
    // changed how V8 stores the user's values (e.g. small-integer arrays turned to doubles).
    sideEffect,
  };
}

// ---------------------------------------------------------------------------------------
// Peak memory: the process's resident-set high-water mark (VmHWM), reset just before the
// save through /proc/self/clear_refs, minus the resident set just before it. It counts
// every thread (the background writer included) and every allocation, JS heap or not.

function residentKiB(field) {
  const status = readFileSync('/proc/self/status', 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (match === null) throw new Error(`no ${field} in /proc/self/status`);
  return Number(match[1]);
}

function resetPeak() {
  writeFileSync('/proc/self/clear_refs', '5');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function settleHeap() {
  gc();
  await sleep(200);
  gc();
}

/** Extra resident memory (bytes) while `fn` runs: peak minus the level just before. */
async function peakDuring(fn) {
  await settleHeap();
  const before = residentKiB('VmRSS');
  const heapBefore = process.memoryUsage().heapUsed;
  resetPeak();
  const t = now();
  await fn();
  const ms = now() - t;
  const peak = residentKiB('VmHWM');
  await settleHeap();
  const after = residentKiB('VmRSS');
  // Live JS heap kept after the call: on a first save, mostly the encoder's object-identity
  // WeakMap (~27 bytes an object, kept for the next saves), part of the peak (#13.2).
  const heapRetained = process.memoryUsage().heapUsed - heapBefore;
  // The resident set can shrink during the call (a GC returns pages): no negative peaks.
  return {
    peak: Math.max(0, peak - before) * 1024,
    retained: (after - before) * 1024,
    heapRetained,
    ms,
  };
}

async function memory() {
  log(`building state (${args.mode})`);
  const w = workload(id, args.quick);
  const out = { id, mode: args.mode, method: 'VmHWM (reset via /proc/self/clear_refs) - VmRSS' };
  try {
    resetPeak();
  } catch (err) {
    return { ...out, error: `cannot reset the peak RSS here: ${err.message}` };
  }
  if (args.mode === 'memory-ours') {
    const dir = freshDir();
    const chp = new Checkpoint(options(dir));
    chp.restore(w.state);
    await sleep(300); // the background thread has started before we measure
    out.first = await peakDuring(() => chp.save());
    out.repeat = await peakDuring(() => chp.save());
    // A due sync() copies the snapshot into a staging buffer that it keeps for the next one.
    const syncAndFlush = async () => {
      chp.sync();
      await chp.flush();
    };
    out.syncFirst = await peakDuring(syncAndFlush);
    out.syncRepeat = await peakDuring(syncAndFlush);
    out.rawBytes = chp.info?.rawBytes;
    out.bytes = statSync(chp.location).size;
    chp.close();
    removeDir(dir);
  } else if (args.mode === 'memory-v8gzip') {
    const dir = freshDir();
    const path = join(dir, 'state.v8.gz');
    out.first = await peakDuring(() => writeFileSync(path, zlib.gzipSync(v8.serialize(w.state))));
    out.bytes = statSync(path).size;
    removeDir(dir);
  } else {
    throw new Error(`unknown --mode ${args.mode}`);
  }
  return out;
}

const result = args.mode === undefined || args.mode === 'ours' ? await timings() : await memory();
if (result.ours !== undefined) {
  log(`our save (repeat) median ${median(result.ours.saveRepeat).toFixed(1)} ms`);
}
process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
