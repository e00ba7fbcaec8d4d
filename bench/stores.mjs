// Shared stores through a Checkpoint: `npm run bench:stores` (or `node bench/stores.mjs`).
//
//   --runs N   measured runs per figure (default 5; medians are reported)
//   --write    write the table between the bench-stores markers of docs/benchmarks-stores.md
//              and of the README
//
// State: 100 MB of random doubles (a Float64Array; incompressible, so stored raw). For each
// store, on loopback: a durable save(); restore() by a new Checkpoint with an empty cache
// folder (another machine: download, verify, decode); restore() with the cache folder the
// saves filled (a restart on the same machine: no download); and a due sync() — the
// main-thread pause, then the time until flush() says the upload is committed.
// Each store's own limit runs right after each save, alternating with it (#17.4): for the
// file store a durable write by hand, for Redis plain ioredis SETs of the same 8 MiB chunks
// (4 in flight), for S3 a bare multipart upload with the AWS SDK (8 MiB parts, 4 at a time,
// the store's client settings), of the same bytes; the table leads with our ratio.
// `--only file,redis,s3` measures some of the stores only. Redis runs as its own
// redis-server (no persistence), S3 as moto's server mode (python3 -m moto.server), when
// they are here. Why the file store's save here once took 3x what `npm run bench` shows:
// docs/benchmarks-stores.md.
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  distUrl,
  freshDir,
  median,
  now,
  parseArgs,
  rawDurableWrite,
  removeDir,
  writeBetweenMarkers,
} from './common.mjs';

const { Checkpoint, fileStore } = await import(distUrl());
const args = parseArgs(process.argv.slice(2));
const runs = args.runs ?? (args.quick ? 2 : 5);
const MB = 1e6;
const TOTAL = args.quick ? 20 * MB : 100 * MB;
const log = (m) => process.stderr.write(`${m}\n`);
const cleanup = [];

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function redisKind() {
  if (spawnSync('redis-server', ['--version']).status !== 0) return undefined;
  const { redisStore } = await import(distUrl('redis.js'));
  const port = await freePort();
  const dir = freshDir();
  const child = spawn(
    'redis-server',
    ['--port', `${port}`, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  cleanup.push(() => {
    child.kill();
    removeDir(dir);
  });
  await sleep(300);
  const { default: Redis } = await import('ioredis');
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: false });
  cleanup.unshift(() => client.disconnect());
  return {
    id: 'redis',
    label: 'Redis (`redisStore`, 8 MiB chunks)',
    bareLabel: 'ioredis SETs of the same 8 MiB Buffers, 4 in flight',
    // The store's own limit (#17.4): the same bytes as plain SETs of the same chunks, a few
    // in flight on one connection, as a careful user would write them by hand. Buffers, not
    // Uint8Array views: ioredis sends a Uint8Array that is not a Buffer as its decimal text
    // (`String(arg)`, "12,34,…"), about 3.5 times the bytes, which made the bare pipeline
    // look 2-3 times slower than our store on 2026-12-05.
    async bare(bytes) {
      const keys = [];
      const inFlight = [];
      const t = now();
      for (let at = 0; at < bytes.byteLength; at += CHUNK) {
        const key = `bare:${at}`;
        keys.push(key);
        const n = Math.min(CHUNK, bytes.byteLength - at);
        inFlight.push(client.set(key, Buffer.from(bytes.buffer, bytes.byteOffset + at, n)));
        if (inFlight.length >= 4) await inFlight.shift();
      }
      await Promise.all(inFlight);
      const ms = now() - t;
      await client.del(...keys);
      return ms;
    },
    make: (cache) => redisStore({ url: `redis://127.0.0.1:${port}`, prefix: 'bench', cache }),
  };
}

async function s3Kind() {
  if (spawnSync('python3', ['-c', 'import moto.server']).status !== 0) return undefined;
  let s3;
  let sdk;
  try {
    s3 = await import(distUrl('s3.js'));
    sdk = await import('@aws-sdk/client-s3');
  } catch {
    return undefined;
  }
  const port = await freePort();
  const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', `${port}`], {
    stdio: 'ignore',
  });
  cleanup.push(() => child.kill());
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
  // The same client settings as the store's (src/store/s3-client.ts): with the SDK's default
  // flexible checksums, the bare client also computed a CRC of every part in JavaScript.
  const client = new sdk.S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  for (let i = 0; ; i++) {
    try {
      await client.send(new sdk.CreateBucketCommand({ Bucket: 'bench' }));
      break;
    } catch (err) {
      if (i > 50) throw err;
      await sleep(200);
    }
  }
  return {
    id: 's3',
    label: 'S3 (`s3Store` against moto, 8 MiB parts)',
    bareLabel: 'AWS SDK multipart upload, 8 MiB parts, 4 at a time',
    // The store's own limit (#17.4): a bare multipart upload of the same bytes with the SDK.
    async bare(bytes) {
      const Bucket = 'bench';
      const Key = 'bare';
      const t = now();
      const { UploadId } = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key }));
      const slices = [];
      for (let at = 0; at < bytes.byteLength; at += CHUNK)
        slices.push(bytes.subarray(at, at + CHUNK));
      const done = [];
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < slices.length; i = next++) {
          const { ETag } = await client.send(
            new sdk.UploadPartCommand({
              Bucket,
              Key,
              UploadId,
              PartNumber: i + 1,
              Body: slices[i],
            }),
          );
          done[i] = { ETag, PartNumber: i + 1 };
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
      await client.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: done },
        }),
      );
      const ms = now() - t;
      await client.send(new sdk.DeleteObjectCommand({ Bucket, Key }));
      return ms;
    },
    make: (cache) =>
      s3.s3Store({
        bucket: 'bench',
        prefix: 'bench',
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials,
        cache,
      }),
  };
}

const CHUNK = 8 * 2 ** 20;
const state = () => ({ data: randomFillSync(new Float64Array(TOTAL / 8)) });

async function measure(kind) {
  const figures = {
    save: [],
    bare: [],
    restoreRemote: [],
    restoreCached: [],
    pause: [],
    committed: [],
  };
  const cache = freshDir();
  const dir = freshDir();
  const make = (c) => kind.make(c ?? cache, dir);
  const options = { name: 'bench', log: false, signals: false, compression: 'none' };
  const initial = state();
  // Untimed: on these VMs the kernel's first read of a page only user code has touched costs a
  // fault of its own (write() of 100 MB just filled: ~470 ms, the same bytes again: ~40 ms), so
  // whichever side wrote these fresh bytes first paid it alone (docs/benchmarks-stores.md).
  rawDurableWrite(new Uint8Array(initial.data.buffer));
  for (let run = 0; run < runs; run++) {
    let chp = new Checkpoint({ ...options, store: make(), interval: '1h' });
    chp.restore(initial);
    let t = now();
    chp.save();
    figures.save.push(now() - t);
    chp.close();
    // Alternating with our save, so the machine's drift hits both (#17.4).
    const bytes = new Uint8Array(initial.data.buffer);
    figures.bare.push(await kind.bare(bytes));

    const other = freshDir();
    chp = new Checkpoint({ ...options, store: make(other) });
    t = now();
    const restored = chp.restore({ data: new Float64Array(0) });
    figures.restoreRemote.push(now() - t);
    if (restored.data.length !== TOTAL / 8) throw new Error('restored the wrong state');
    chp.close();
    removeDir(other);

    chp = new Checkpoint({ ...options, store: make(), interval: 0 });
    t = now();
    chp.restore({ data: new Float64Array(0) });
    figures.restoreCached.push(now() - t);
    t = now();
    chp.sync();
    figures.pause.push(now() - t);
    await chp.flush();
    figures.committed.push(now() - t);
    chp.close();
  }
  removeDir(cache);
  removeDir(dir);
  const m = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, median(v)]));
  log(
    `${kind.label}: ${JSON.stringify(figures, (_, v) => (typeof v === 'number' ? Math.round(v) : v))}`,
  );
  return m;
}

const kinds = [
  {
    id: 'file',
    label: 'file (`fileStore`, the default; reference)',
    make: (_cache, dir) => fileStore(dir),
    bareLabel: 'write, fsync, rename, fsync folder by hand',
    bare: rawDurableWrite,
  },
];
// `--only file,redis,s3`: some of the stores only.
const wanted = (name) => args.only?.includes(name) ?? true;
if (wanted('redis')) kinds.push(await redisKind());
if (wanted('s3')) kinds.push(await s3Kind());
const chosen = kinds.filter((k) => k !== undefined && wanted(k.id));

const rows = [];
try {
  for (const kind of chosen) rows.push([kind.label, await measure(kind), kind.bareLabel]);
} finally {
  for (const f of cleanup) f();
}

const rate = (ms) => `${Math.round(TOTAL / MB / (ms / 1000))} MB/s`;
const ms = (x) => `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`;
const lines = [
  `${TOTAL / MB} MB of doubles through each store on loopback, medians of ${runs} runs, ${new Date().toISOString().slice(0, 10)}:`,
  '',
  '| store | durable `save()` ÷ the bare client | durable `save()` | the bare client, same bytes | `restore()` on another machine (download) | `restore()` from the local cache | due `sync()`: main-thread pause / committed |',
  '|---|---|---|---|---|---|---|',
  ...rows.map(
    ([label, m, bareLabel]) =>
      `| ${label} | **${(m.save / m.bare).toFixed(2)}×** | ${ms(m.save)} (${rate(m.save)}) | ${ms(m.bare)} (${bareLabel}) | ${ms(m.restoreRemote)} (${rate(m.restoreRemote)}) | ${ms(m.restoreCached)} (${rate(m.restoreCached)}) | ${ms(m.pause)} / ${ms(m.committed)} |`,
  ),
];
const table = lines.join('\n');
process.stdout.write(`${table}\n`);

// Between the markers only: the rest of docs/benchmarks-stores.md is the explanation.
if (args.write) {
  for (const file of ['docs/benchmarks-stores.md', 'README.md']) {
    if (
      !writeBetweenMarkers(new URL(`../${file}`, import.meta.url).pathname, 'bench-stores', table)
    )
      log(`${file} has no bench-stores markers: left untouched`);
  }
}
