/**
 * Durable steps (#11.6): a SIGTERM in the middle of a once() batch starts no new call,
 * keeps every resolved result and ends the process with 128 + signal at once; on a full
 * disk every pending step settles with StoreError.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanedAfterEach } from './helpers.js';

const { children, tempDir } = cleanedAfterEach('rs-steps-');
const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/steps/${name}`, import.meta.url));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `script` with `args`; resolves when it exits (killed after `timeoutMs`). */
function run(script: string, args: string[], timeoutMs = 30_000) {
  const child = spawn(process.execPath, [fixture(script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { child, exited };
}

describe('SIGTERM during a once() batch (#11.6a)', () => {
  const ITEMS = 2000;
  const CONCURRENCY = 64;
  /** Calls answered before the server starts holding answers back, then signals the job. */
  const SIGNAL_AFTER = 600;

  it('starts no call after the signal, exits 143 at once, and no resolved result is paid for again', async () => {
    const dir = tempDir();
    const resolvedFile = join(dir, 'resolved.txt');
    // The paid API: counts calls per key. Once SIGNAL_AFTER calls are answered it holds
    // the next answers back; when all CONCURRENCY workers wait on it, no request is in
    // transit, so any request arriving after the signal is a call started after it.
    const calls = new Map<string, number>();
    let arrivals = 0;
    let answered = 0;
    let holding = false;
    const held: ServerResponse[] = [];
    let allHeld!: () => void;
    const workersBlocked = new Promise<void>((resolve) => (allHeld = resolve));
    const server = createServer((req, res) => {
      const key = req.url!.slice(1);
      calls.set(key, (calls.get(key) ?? 0) + 1);
      arrivals++;
      if (holding) {
        held.push(res);
        if (held.length === CONCURRENCY) allHeld();
        return;
      }
      res.end(`answer to ${key}`);
      if (++answered === SIGNAL_AFTER) holding = true;
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = String((server.address() as AddressInfo).port);
    const args = [port, dir, resolvedFile, String(ITEMS), String(CONCURRENCY)];

    const first = run('http-batch.mjs', args);
    await workersBlocked;
    const arrivalsAtSignal = arrivals;
    first.child.kill('SIGTERM');
    const signalledAt = performance.now();
    // The calls in flight finish after the signal (their answers were paid for already).
    await new Promise((r) => setTimeout(r, 100));
    holding = false;
    for (const res of held.splice(0)) res.end('late answer');
    const exit = await first.exited;
    const exitMs = performance.now() - signalledAt;
    expect({ code: exit.code, signal: exit.signal, stderr: exit.stderr }).toEqual({
      code: 143,
      signal: null,
      stderr: '',
    });
    expect(arrivals - arrivalsAtSignal).toBe(0);
    // "At once": the job ends when its last call in flight is recorded (generous bound for
    // a loaded machine; the old code went on for a full second, starting ~900 calls).
    expect(exitMs).toBeLessThan(5000);
    const resolvedBefore = readFileSync(resolvedFile, 'utf8').trim().split('\n');
    expect(resolvedBefore.length).toBeGreaterThanOrEqual(SIGNAL_AFTER);

    const callsBefore = new Map(calls);
    const second = await run('http-batch.mjs', args).exited;
    expect({ code: second.code, stdout: second.stdout, stderr: second.stderr }).toEqual({
      code: 0,
      stdout: `done ${ITEMS}\n`,
      stderr: '',
    });
    const paidAgain = resolvedBefore.filter((key) => calls.get(key) !== callsBefore.get(key));
    expect(paidAgain).toEqual([]);
    // Stronger: the calls in flight at the signal were recorded too, so no key was paid twice.
    expect(calls.size).toBe(ITEMS);
    expect([...calls].filter(([, n]) => n !== 1)).toEqual([]);
  }, 60_000);
});
