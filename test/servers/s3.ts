/**
 * A local S3-compatible server for tests: moto's server mode (`python3 -m moto.server`) on a
 * free loopback port. moto keeps everything in memory, so stop() then start() on the same
 * port gives an empty server; tests that need a server gone and back with its objects go
 * through `tcpProxy()` instead.
 *
 * Without python3 and moto[server], `describeS3` skips its suites with a notice, unless env
 * REQUIRE_SERVERS=1 (CI), where that is a failure.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { describe } from 'vitest';

/** Static credentials and region moto accepts. */
export const S3_TEST_CONFIG = {
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
} as const;

export interface S3TestServer {
  endpoint: string;
  /** A raw SDK client for the server, to look at what the store left. */
  client: S3Client;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

function motoRuns(): boolean {
  try {
    execFileSync('python3', ['-c', 'import moto.server, flask'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether moto's server can run here (python3 with moto[server]). */
export const s3Available = motoRuns();

if (!s3Available) {
  const message = 'python3 with moto[server] is not available: the S3 store tests cannot run';
  if (process.env.REQUIRE_SERVERS === '1') throw new Error(`${message} (REQUIRE_SERVERS=1)`);
  console.warn(`${message}; skipped (pip install 'moto[server]' to run them)`);
}

/** `describe` when moto can run here, `describe.skip` otherwise. */
export function describeS3(name: string, fn: () => void): void {
  (s3Available ? describe : describe.skip)(name, fn);
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts moto on a free port and waits until it answers. */
export async function startS3Server(): Promise<S3TestServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const client = new S3Client({ endpoint, ...S3_TEST_CONFIG });

  const start = async () => {
    child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
      stdio: 'ignore',
    });
    const started = Date.now();
    for (;;) {
      if (child.exitCode !== null) throw new Error(`moto exited with ${child.exitCode}`);
      try {
        await fetch(`${endpoint}/`);
        return;
      } catch {
        if (Date.now() - started > 30_000) throw new Error(`moto did not answer on ${endpoint}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    running.kill('SIGTERM');
    await once(running, 'exit');
  };
  await start();
  return {
    endpoint,
    client,
    createBucket: async (name) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    stop,
    start,
  };
}

export interface TcpProxy {
  endpoint: string;
  /** Refuse connections (and drop open ones), as a stopped server does. */
  close(): Promise<void>;
  /** Accept connections and never answer, as a server behind a dead network does. */
  stall(): void;
  /** Forward again. */
  open(): Promise<void>;
  shutdown(): Promise<void>;
}

/** A loopback TCP proxy to `target`, to make a live server unreachable and back. */
export async function tcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port: targetPort } = new URL(target);
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let stalled = false;
  let server: net.Server | undefined;
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const open = async () => {
    stalled = false;
    if (server !== undefined) return;
    server = net.createServer((socket) => {
      track(socket);
      if (stalled) return; // read nothing, answer nothing
      const upstream = net.connect(Number(targetPort), hostname);
      track(upstream);
      socket.pipe(upstream).pipe(socket);
      upstream.on('close', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
  };
  const dropAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  const close = async () => {
    const running = server;
    server = undefined;
    dropAll();
    if (running !== undefined) await new Promise((resolve) => running.close(resolve));
  };
  await open();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close,
    stall: () => {
      stalled = true;
      dropAll();
    },
    open,
    shutdown: close,
  };
}

/**
 * A loopback HTTP proxy to `target` that holds each answer `holdMs(method, url)` ms before
 * sending any of it: a server that works on a request in silence (#17.4).
 */
export async function slowAnswerProxy(
  target: string,
  holdMs: (method: string, url: string) => number,
): Promise<{ endpoint: string; shutdown(): Promise<void> }> {
  const { hostname, port: targetPort } = new URL(target);
  const server = http.createServer((req, res) => {
    const { method = 'GET', url = '/', headers } = req;
    const upstream = http.request(
      { host: hostname, port: Number(targetPort), method, path: url, headers },
      (answer) => {
        setTimeout(
          () => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
          holdMs(method, url),
        );
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  const port = await freePort();
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async shutdown() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
