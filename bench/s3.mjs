// Write and download of 100 MB through the S3 store against moto's S3 server on loopback.
// Median of 5 runs (`--runs N`, `--quick` for 2); prints MB/s (1 MB = 10^6 bytes).
// Needs python3 with moto[server]. The figures are those of moto, a Python server, more than
// of the store: against S3 itself the network decides.
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distUrl, median, now, parseArgs } from './common.mjs';

const args = parseArgs(process.argv.slice(2));
const SIZE = 100 * 1024 * 1024;
const { createS3Store } = await import(distUrl('store/s3.js'));

const port = await new Promise((resolve) => {
  const probe = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const endpoint = `http://127.0.0.1:${port}`;
const moto = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
  stdio: 'ignore',
});
try {
  for (let tries = 0; ; tries++) {
    try {
      await fetch(`${endpoint}/`);
      break;
    } catch {
      if (tries > 300) throw new Error(`moto did not answer on ${endpoint}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await fetch(`${endpoint}/rs-bench`, { method: 'PUT' });
  const store = createS3Store({
    bucket: 'rs-bench',
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  });
  // Shaped like a checkpoint container: a small header, then the payload in large parts.
  const payload = randomFillSync(Buffer.allocUnsafe(SIZE));
  const parts = [
    payload.subarray(0, 4096),
    payload.subarray(4096, SIZE / 2),
    payload.subarray(SIZE / 2),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'rs-bench-s3-'));
  const writes = [];
  const downloads = [];
  // Peak extra memory outside the JS heap (buffers) while writing: parts copied for upload.
  let peakExtra = 0;
  try {
    for (let run = 0; run < args.runs; run++) {
      const base = process.memoryUsage().arrayBuffers;
      const sampler = setInterval(() => {
        peakExtra = Math.max(peakExtra, process.memoryUsage().arrayBuffers - base);
      }, 2);
      let t = now();
      const generation = await store.write('bench', parts, 1);
      writes.push(now() - t);
      clearInterval(sampler);
      t = now();
      await store.download('bench', generation, join(dir, `run-${run}.ckpt`));
      downloads.push(now() - t);
      rmSync(join(dir, `run-${run}.ckpt`));
    }
  } finally {
    await store.remove('bench');
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const show = (label, times) => {
    const ms = median(times);
    const rate = SIZE / 1e6 / (ms / 1000);
    const all = times.map((t) => t.toFixed(0)).join(', ');
    console.log(
      `${label}: ${rate.toFixed(0)} MB/s (median ${ms.toFixed(0)} ms of ${times.length}: ${all})`,
    );
  };
  console.log(
    `S3 store, ${SIZE / 1024 / 1024} MiB against moto on loopback, Node ${process.version}`,
  );
  show('write (upload + commit)', writes);
  show('download (to a file)', downloads);
  console.log(
    `peak extra buffer memory while writing: ${(peakExtra / 1024 / 1024).toFixed(1)} MiB`,
  );
} finally {
  moto.kill('SIGTERM');
  await once(moto, 'exit');
}
