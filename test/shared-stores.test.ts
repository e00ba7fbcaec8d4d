/**
 * The shared stores behind a Checkpoint, against real servers on loopback: the store
 * contract; a job SIGKILLed mid-upload at random moments, restored each time by a process
 * with another cache folder (another machine); one writer per checkpoint across processes,
 * with takeover after a killed holder's lease expires; the server stopped during a save.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Checkpoint,
  CheckpointLockedError,
  type CheckpointStore,
  StoreError,
} from '../dist/index.js';
import { redisStore } from '../dist/redis.js';
import { s3Store } from '../dist/s3.js';
import { cleanedAfterEach, thrownBy } from './helpers.js';
import { redisAvailable, startRedis } from './servers/redis.js';
import { freePort, S3_TEST_CONFIG, s3Available, startS3Server } from './servers/s3.js';
import { describeStoreContract } from './store-contract.js';

const JOB = fileURLToPath(new URL('./fixtures/remote/job.mjs', import.meta.url));
const PROXY = fileURLToPath(new URL('./fixtures/remote/proxy.mjs', import.meta.url));
const { tempDir, children, open } = cleanedAfterEach('rs-shared-');
let prefixes = 0;

interface Kind {
  label: string;
  kind: 'redis' | 's3';
  available: boolean;
  /** Starts the server; returns store options for a fresh prefix, and the server's controls. */
  start(): Promise<{
    options(extra?: Record<string, unknown>): Record<string, unknown>;
    stop(): Promise<void>;
    restart(): Promise<void>;
    dispose(): Promise<void>;
  }>;
  make(options: Record<string, unknown>): CheckpointStore;
  /** Location of `name` in a store made with `options`. */
  locate(options: Record<string, unknown>, name: string): string;
  /** What the message of a failed save starts with. */
  failure: RegExp;
}

const kinds: Kind[] = [
  {
    label: 'redisStore',
    kind: 'redis',
    available: redisAvailable,
    async start() {
      const server = await startRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
      return {
        options: (extra = {}) => ({ url: server.url, prefix: `t${++prefixes}`, ...extra }),
        stop: () => server.stop(),
        restart: () => server.start(),
        dispose: () => server.dispose(),
      };
    },
    make: (options) => redisStore(options),
    locate: (options, name) =>
      `${(options.url as string).replace(/\/$/, '')}/${options.prefix as string}:${name}`,
    failure: /^Redis store could not write redis:\/\/127\.0\.0\.1:\d+\/t\d+:down: /,
  },
  {
    label: 's3Store',
    kind: 's3',
    available: s3Available,
    async start() {
      // moto keeps objects in memory: "stopping the server" kills a proxy in front of it,
      // in a process of its own (this one blocks in synchronous store calls).
      const server = await startS3Server();
      await server.createBucket('shared');
      const port = await freePort();
      let proxy: ChildProcess | undefined;
      const startProxy = async () => {
        const child = spawn(
          process.execPath,
          [PROXY, String(port), new URL(server.endpoint).port],
          {
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        proxy = child;
        await new Promise((resolve) => child.stdout!.once('data', resolve));
      };
      const stopProxy = async () => {
        const child = proxy;
        proxy = undefined;
        if (child === undefined) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      };
      await startProxy();
      return {
        options: (extra = {}) => ({
          bucket: 'shared',
          prefix: `t${++prefixes}`,
          endpoint: `http://127.0.0.1:${port}`,
          ...S3_TEST_CONFIG,
          ...extra,
        }),
        stop: stopProxy,
        restart: startProxy,
        dispose: async () => {
          await stopProxy();
          await server.stop();
        },
      };
    },
    make: (options) => s3Store(options as unknown as Parameters<typeof s3Store>[0]),
    locate: (options, name) => `s3://shared/${options.prefix as string}/${name}`,
    failure: /^Cannot upload checkpoint "down" at s3:\/\/shared\/t\d+\/down: /,
  },
];

for (const kind of kinds) {
  if (!kind.available) continue;
  const server = await kind.start();
  afterAll(() => server.dispose());
  const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  let last: Record<string, unknown> = {};
  describeStoreContract([
    {
      label: kind.label,
      make: () => kind.make((last = server.options())),
      location: (name) =>
        expect.stringMatching(new RegExp(`^${escapeRegExp(kind.locate(last, name))}@`)),
      movedAside: (name, tag, count) =>
        Array.from({ length: count }, () =>
          expect.stringContaining(kind.locate(last, `${name}.${tag}`)),
        ),
    },
  ]);

  describe(`${kind.label} behind a Checkpoint`, () => {
    const job = (mode: string, options: Record<string, unknown>, name = 'job') =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [JOB, mode, JSON.stringify({ kind: kind.kind, store: options, cache: tempDir(), name })],
          { encoding: 'utf8', timeout: 60_000 },
        ),
      );

    function startJob(mode: string, options: Record<string, unknown>): Promise<ChildProcess> {
      const child = spawn(
        process.execPath,
        [JOB, mode, JSON.stringify({ kind: kind.kind, store: options, cache: tempDir() })],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(child);
      return new Promise((resolve, reject) => {
        child.stdout!.once('data', () => resolve(child));
        child.once('exit', (code) => reject(new Error(`job exited early with ${code}`)));
      });
    }

    const kill = (child: ChildProcess) =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });

    it('SIGKILLed mid-upload at random moments: another machine restores a committed, whole state', async () => {
      const options = server.options({ leaseTtl: 500 });
      let previous = 0;
      for (let round = 0; round < 10; round++) {
        const child = await startJob('loop', options);
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
        await kill(child);
        await new Promise((r) => setTimeout(r, 600)); // the dead holder's lease expires
        const out = job('restore', options);
        expect(out.consistent).toBe(true);
        expect(out.n).toBeGreaterThanOrEqual(previous);
        previous = out.n;
      }
      expect(previous).toBeGreaterThan(0);
    }, 120_000);

    it('one writer: a second process is refused naming the holder; after a kill and the lease expiry it takes over', async () => {
      const options = server.options({ leaseTtl: 1000 });
      const holder = await startJob('hold', options);
      const err = thrownBy(() => new Checkpoint({ name: 'job', store: kind.make(options) }));
      expect(err).toBeInstanceOf(CheckpointLockedError);
      expect((err as CheckpointLockedError).pid).toBe(holder.pid);
      expect((err as CheckpointLockedError).host).toBe(hostname());
      expect((err as Error).message).toContain(`pid ${holder.pid} on host ${hostname()}`);
      await kill(holder);
      await new Promise((r) => setTimeout(r, 1200));
      const chp = new Checkpoint({ name: 'job', store: kind.make(options), log: false });
      open.push(chp as unknown as Checkpoint<Record<string, unknown>>);
      expect(chp.restore({ n: 0 })).toEqual({ n: 0 });
      expect(chp.restored).toBe(false);
    });

    it.runIf(kind.kind === 'redis' || kind.kind === 's3')(
      'once() steps are journaled in the store: another machine gets them without calling fn',
      () => {
        const options = server.options();
        const steps = (n: number) =>
          JSON.parse(
            execFileSync(
              process.execPath,
              [
                JOB,
                'steps',
                JSON.stringify({ kind: kind.kind, store: options, cache: tempDir(), steps: n }),
              ],
              { encoding: 'utf8', timeout: 60_000 },
            ),
          );
        expect(steps(300)).toEqual({ calls: 300, sum: 89_700, done: 300, failed: 0, pending: 0 });
        // Appended to a journal in the store, no snapshot saved per step.
        const store = kind.make(options);
        expect(store.generations('job')).toEqual([]);
        const journals = store.journal!.read('job');
        expect(journals).toHaveLength(1);
        expect(journals[0]!.location).toMatch(
          kind.kind === 'redis'
            ? /\/t\d+:job:journal:\d{13}$/
            : /^s3:\/\/shared\/t\d+\/job\/journal-\d{16}$/,
        );
        expect(steps(400)).toEqual({ calls: 100, sum: 159_600, done: 400, failed: 0, pending: 0 });
      },
    );

    it('the server stopped during a save: StoreError with its cause; the next save succeeds; nothing committed is lost', async () => {
      const options = server.options();
      const chp = new Checkpoint<{ n: number }>({
        name: 'down',
        store: kind.make(options),
        log: false,
        signals: false,
      });
      open.push(chp as unknown as Checkpoint<Record<string, unknown>>);
      chp.restore({ n: 0 });
      chp.save({ n: 1 });
      await server.stop();
      const err = thrownBy(() => chp.save({ n: 2 }));
      await server.restart();
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).message).toMatch(kind.failure);
      expect((err as StoreError).cause).toBeInstanceOf(Error);
      chp.save({ n: 3 });
      chp.close();
      expect(job('restore', options, 'down')).toMatchObject({ n: 3, restored: true });
    }, 60_000);
  });
}

if (kinds.every((k) => !k.available)) {
  describe.skip('shared stores (no server available here)', () => {
    it('skipped', () => {});
  });
}
