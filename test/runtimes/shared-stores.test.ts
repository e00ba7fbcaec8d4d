/**
 * The shared stores (Redis, S3) from Bun and Deno programs (#13.5), against a real
 * redis-server and moto on loopback (test/servers/): a checkpoint saved from one runtime
 * restores on the others on another machine (another cache folder), both ways; one writer at
 * a time across runtimes, a dead holder taken over at once on its host; a busy loop's
 * background saves reach the store and keep its lease; a holder stopped past its lease is
 * taken over from another host and its next save is refused (fencing). The `resume` CLI reads
 * the store on each runtime. Every process runs test/runtimes/store-app.mjs.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cleanedAfterEach } from '../helpers.js';
import { redisAvailable, startRedis } from '../servers/redis.js';
import { S3_TEST_CONFIG, s3Available, startS3Server } from '../servers/s3.js';
import { type Runtime, runtimeLabel, runtimes } from './runtimes.js';

const APP = fileURLToPath(new URL('./store-app.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const { children, tempDir } = cleanedAfterEach('rs-rt-stores-');
/** A UTS namespace can be made here (root): a process with another host name. */
const canUnshare = spawnSync('unshare', ['--uts', 'true']).status === 0;
const node: Runtime = { major: 'here', kind: 'node', bin: process.execPath, prefix: [] };
const others = runtimes().filter((rt) => rt.kind !== 'node');
let prefixes = 0;

interface Kind {
  label: string;
  kind: 'redis' | 's3';
  available: boolean;
  /** Starts the server: store options for a fresh prefix, the CLI's `--store` arguments. */
  start(): Promise<{
    options(extra?: Record<string, unknown>): Record<string, unknown>;
    cli(options: Record<string, unknown>): string[];
    dispose(): Promise<void>;
  }>;
}

const kinds: Kind[] = [
  {
    label: 'redisStore',
    kind: 'redis',
    available: redisAvailable,
    async start() {
      const server = await startRedis();
      return {
        options: (extra = {}) => ({ url: server.url, prefix: `r${++prefixes}`, ...extra }),
        cli: (options) => ['--store', `${server.url}/${options.prefix as string}`],
        dispose: () => server.dispose(),
      };
    },
  },
  {
    label: 's3Store',
    kind: 's3',
    available: s3Available,
    async start() {
      const server = await startS3Server();
      await server.createBucket('shared');
      return {
        options: (extra = {}) => ({
          bucket: 'shared',
          prefix: `r${++prefixes}`,
          endpoint: server.endpoint,
          ...S3_TEST_CONFIG,
          ...extra,
        }),
        cli: (options) => [
          '--store',
          `s3://shared/${options.prefix as string}`,
          '--endpoint',
          server.endpoint,
        ],
        dispose: () => server.stop(),
      };
    },
  },
];

/** The environment of the CLI reading moto: its static credentials. */
const cliEnv = {
  ...process.env,
  AWS_ACCESS_KEY_ID: S3_TEST_CONFIG.credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: S3_TEST_CONFIG.credentials.secretAccessKey,
};

/** `rt store-app.mjs mode` on this host, or (`host` given) in a UTS namespace named `host`. */
function spawnApp(rt: Runtime, mode: string, config: object, host?: string): ChildProcess {
  const args = [...rt.prefix, APP, mode, JSON.stringify(config)];
  const child =
    host === undefined
      ? spawn(rt.bin, args, { stdio: ['pipe', 'pipe', 'inherit'] })
      : spawn(
          'unshare',
          ['--uts', 'sh', '-c', `hostname ${host} && exec "$0" "$@"`, rt.bin, ...args],
          {
            stdio: ['pipe', 'pipe', 'inherit'],
          },
        );
  children.push(child);
  return child;
}

/** The JSON lines a child prints, one at a time. */
function linesOf(child: ChildProcess): () => Promise<Record<string, unknown>> {
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return async () => {
    const line = await lines.next();
    if (line.done === true) throw new Error(`the app ended (${child.exitCode})`);
    return JSON.parse(line.value) as Record<string, unknown>;
  };
}

/** Runs `rt store-app.mjs restore` with its own cache folder (another machine): what it prints. */
async function restoreOn(rt: Runtime, config: object): Promise<Record<string, unknown>> {
  const child = spawnApp(rt, 'restore', { cache: tempDir(), ...config });
  child.stdin!.end();
  return linesOf(child)();
}

const kill = (child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL') =>
  new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });

for (const kind of kinds) {
  (kind.available ? describe : describe.skip)(`${kind.label} from Bun and Deno`, () => {
    let server: Awaited<ReturnType<Kind['start']>>;
    beforeAll(async () => {
      server = await kind.start();
    }, 60_000);
    afterAll(() => server?.dispose());

    describe.each(others.map((rt) => ({ ...rt, label: runtimeLabel(rt) })))('$label', (rt) => {
      /** Another runtime than `rt` and Node: Deno for Bun, Bun for Deno (else Node). */
      const other = others.find((o) => o.kind !== rt.kind) ?? node;

      test(`a save from it restores on ${runtimeLabel(other)} on another machine, one from Node on it; one writer at a time`, async () => {
        const store = server.options();
        const config = { kind: kind.kind, store };
        const holder = spawnApp(rt, 'serve', { ...config, cache: tempDir() });
        const next = linesOf(holder);
        const { pid } = await next();
        expect(pid).toBe(holder.pid);
        holder.stdin!.write('save 3\n');
        expect(await next()).toEqual({ saved: 3 });
        // Held: refused on another runtime, naming the holder.
        expect(await restoreOn(other, config)).toEqual({
          error: 'CHECKPOINT_LOCKED',
          pid,
          host: hostname(),
        });
        // Killed: its host takes it over at once (the holder's pid is gone).
        await kill(holder);
        const started = Date.now();
        expect(await restoreOn(other, config)).toEqual({ n: 3, consistent: true, restored: true });
        expect(Date.now() - started).toBeLessThan(15_000); // not the 30 s lease; loaded machine
        // Saved by Node, restored here. (Here to Node: the next test; the other runtime to
        // this one: that runtime's own tests.)
        const saver = spawnApp(node, 'serve', { ...config, cache: tempDir() });
        const line = linesOf(saver);
        expect(await line()).toMatchObject({ n: 3 });
        saver.stdin!.end('save 5\n');
        expect(await line()).toEqual({ saved: 5 });
        expect(await line()).toEqual({ closed: true });
        expect(await restoreOn(rt, config)).toEqual({ n: 5, consistent: true, restored: true });
        // The CLI on this runtime reads the store.
        const exported = spawnSync(
          rt.bin,
          [...rt.prefix, CLI, 'export', 'job', ...server.cli(store)],
          { encoding: 'utf8', env: cliEnv, timeout: 60_000 },
        );
        expect({ code: exported.status, err: exported.stderr }).toEqual({ code: 0, err: '' });
        expect(JSON.parse(exported.stdout)).toMatchObject({ n: 5, sum: 15 });
      });

      test.runIf(canUnshare)(
        'a busy loop on another host: background saves reach the store, its lease is renewed while it spins; stopped past its lease, taken over, its next sync() refused',
        async () => {
          const store = server.options({ leaseTtl: 1000 });
          const config = { kind: kind.kind, store };
          const busy = spawnApp(rt, 'busy', { ...config, cache: tempDir() }, 'other-host');
          const next = linesOf(busy);
          const { pid } = await next();
          // Alive on another host: its lease is renewed while this one waits, so it is refused.
          expect(await restoreOn(node, { ...config, lockWait: 5000 })).toEqual({
            error: 'CHECKPOINT_LOCKED',
            pid,
            host: 'other-host',
          });
          // Stopped (a frozen node): its lease expires, Node takes over with what it saved.
          busy.kill('SIGSTOP');
          const taken = await restoreOn(node, { ...config, lockWait: 20_000 });
          expect(taken).toMatchObject({ consistent: true, restored: true });
          expect(taken.n).toBeGreaterThan(0);
          busy.kill('SIGCONT');
          expect(await next()).toEqual({
            error: 'CHECKPOINT_LOCKED',
            // Who took it over, as far as the store still tells (Node may have closed it).
            message: expect.stringMatching(
              /^Checkpoint "job" was taken over by .+; (the|this) save was not committed/,
            ),
          });
        },
      );
    });
  });
}
