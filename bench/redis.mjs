// Redis store throughput: write and download of 100 MB through createRedisStore against a
// redis-server of its own on loopback (no persistence), medians of `--runs` (default 5):
//   node bench/redis.mjs [chunk size in MiB, default 8] [--runs 5]
// The state is handed over as the container does: a few large parts.
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { distUrl, freshDir, median, now, parseArgs, removeDir } from './common.mjs';

const { createRedisStore } = await import(distUrl('store/redis.js'));

const args = parseArgs(process.argv.slice(2));
const runs = args.runs ?? 5;
const chunkMiB = Number(args.positional[0] ?? 8);
const MB = 1e6;
const TOTAL = 100 * MB;

// Magic and version, header, two raw segments, CRC: the shape of a packed checkpoint.
const sizes = [12, 1_200, 80 * MB, TOTAL - 80 * MB - 1_216, 4];
const parts = sizes.map((size) => randomFillSync(Buffer.allocUnsafe(size)));

const port = await freePort();
const dir = freshDir();
const server = spawn(
  'redis-server',
  ['--port', `${port}`, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
  { stdio: 'ignore' },
);
const store = createRedisStore({
  url: `redis://127.0.0.1:${port}`,
  prefix: 'bench',
  chunkSize: chunkMiB * 1024 * 1024,
});
try {
  await waitForServer(store);
  const writes = [];
  const downloads = [];
  let latest;
  for (let run = 0; run < runs; run++) {
    let t = now();
    latest = await store.write('s1', parts, 2);
    writes.push(now() - t);
    const path = join(dir, `download-${run}`);
    t = now();
    await store.download('s1', latest, path);
    downloads.push(now() - t);
    if (statSync(path).size !== TOTAL) throw new Error(`downloaded ${statSync(path).size} bytes`);
  }
  const rate = (ms) => `${(TOTAL / MB / (ms / 1000)).toFixed(0)} MB/s`;
  const show = (label, times) =>
    console.log(
      `${label}: median ${median(times).toFixed(0)} ms (${rate(median(times))}), ` +
        `min ${Math.min(...times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms`,
    );
  console.log(
    `Redis store, 100 MB in ${sizes.length} parts, ${chunkMiB} MiB chunks, loopback, ${runs} runs (Node ${process.version})`,
  );
  show('write   ', writes);
  show('download', downloads);
} finally {
  await store.close();
  server.kill('SIGTERM');
  await once(server, 'exit');
  removeDir(dir);
}

async function freePort() {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address();
  probe.close();
  return port;
}

async function waitForServer(store) {
  for (let i = 0; ; i++) {
    try {
      return await store.generations('s1');
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
