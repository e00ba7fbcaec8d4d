/**
 * A throwaway redis-server for tests: its own free port on 127.0.0.1 and its own temp
 * folder, no RDB snapshots. `stop()` and `start()` take it down and bring it back on the
 * same port, as a server restart looks to a client.
 *
 * Without redis-server on PATH, `describeRedis` skips its suites with a notice, unless env
 * REQUIRE_SERVERS=1 (CI), where that is a failure.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';

export const redisAvailable = spawnSync('redis-server', ['--version']).status === 0;

if (!redisAvailable) {
  if (process.env.REQUIRE_SERVERS === '1') {
    throw new Error('redis-server is not on PATH, and REQUIRE_SERVERS=1 requires it');
  }
  console.warn('redis-server is not on PATH: the Redis store tests are skipped');
}

/** `describe` when redis-server can run here, `describe.skip` otherwise. */
export function describeRedis(name: string, fn: () => void): void {
  (redisAvailable ? describe : describe.skip)(name, fn);
}

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder; resolves once it answers PING. */
  start(): Promise<void>;
  /** Stops it and deletes its folder. */
  dispose(): Promise<void>;
}

/** Starts a server; `args` adds options, e.g. `['--appendonly', 'yes']` for data that survives a restart. */
export async function startRedis(args: string[] = []): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rs-redis-'));
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      if (child !== undefined) return;
      const options = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir];
      child = spawn('redis-server', [...options, '--appendonly', 'no', ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      await waitForPing(port, child);
    },
    async stop() {
      const running = child;
      child = undefined;
      if (running === undefined || running.exitCode !== null) return;
      const exited = once(running, 'exit');
      running.kill('SIGTERM');
      await exited;
    },
    async dispose() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  await once(probe, 'close');
  return port;
}

/** Resolves once the server answers `+PONG`; fails if it exits or is not up within 10 s. */
async function waitForPing(port: number, child: ChildProcess): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => {
    stderr += data.toString();
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`redis-server exited with ${child.exitCode}: ${stderr.trim()}`);
    }
    if (await answersPing(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s: ${stderr}`);
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    socket.setTimeout(1000, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      reply += data.toString();
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(reply.startsWith('+PONG')));
  });
}
