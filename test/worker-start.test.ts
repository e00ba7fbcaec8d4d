/**
 * Where the background thread's code comes from (#12.3): by default a string built into the
 * library; `globalThis.__bundlerPathsOverrides['resumable-state-worker']` names a file
 * instead. A thread that cannot start is said in one line at open, and saves then run on
 * the calling thread, busy loops included: never skipped silently.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { unpackCheckpoint } from '../dist/codec/container.js';
import { cleanedAfterEach } from './helpers.js';

const { tempDir } = cleanedAfterEach('rs-worker-start-');
const fixture = fileURLToPath(new URL('./fixtures/writer/worker-override.mjs', import.meta.url));
const workerFile = fileURLToPath(new URL('../dist/writer/worker.js', import.meta.url));

function run(dir: string, worker: string) {
  const out = execFileSync(process.execPath, [fixture, dir, worker], { encoding: 'utf8' });
  const lines = out.trimEnd().split('\n');
  const { saves } = JSON.parse(lines.pop()!) as { saves: number };
  const path = join(dir, 'override.ckpt');
  return { notices: lines, saves, onDisk: unpackCheckpoint(readFileSync(path), path).meta.saves };
}

describe('the background thread', () => {
  test('starts from the file an app names in __bundlerPathsOverrides', () => {
    const { notices, saves, onDisk } = run(tempDir(), workerFile);
    expect(notices).toEqual([]);
    expect(saves).toBeGreaterThan(1);
    expect(onDisk).toBe(saves);
  });

  test('that cannot start is said at open, and a busy loop still saves on the calling thread', () => {
    const missing = join(tempDir(), 'gone/worker.js');
    const { notices, saves, onDisk } = run(tempDir(), missing);
    expect(notices).toEqual([
      `resumable-state: the background thread could not start (the worker file ${missing} does not exist): saves run on the calling thread`,
      `resumable-state: signals in busy synchronous loops are not available on Node ${process.version}: the worker file ${missing} does not exist; async loops still save on SIGTERM/SIGINT`,
    ]);
    expect(saves).toBeGreaterThan(1);
    expect(onDisk).toBe(saves);
  });
});
