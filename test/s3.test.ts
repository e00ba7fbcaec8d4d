/**
 * `resumable-state/s3` (s3Store: the S3 store behind the synchronous bridge) against moto:
 * the CheckpointStore contract, and a Checkpoint saving, restoring and locking through it.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Checkpoint, CheckpointLockedError } from '../dist/index.js';
import { type S3StoreOptions, s3Store } from '../dist/s3.js';
import { thrownBy } from './helpers.js';
import {
  describeS3,
  S3_TEST_CONFIG,
  type S3TestServer,
  s3Available,
  startS3Server,
} from './servers/s3.js';
import { describeStoreContract } from './store-contract.js';

const BUCKET = 'rs-s3-entry-test';
const OPEN = fileURLToPath(new URL('./fixtures/s3/open.mjs', import.meta.url));
const open: Checkpoint<Record<string, unknown>>[] = [];
let server: S3TestServer | undefined;

beforeAll(async () => {
  if (!s3Available) return;
  server = await startS3Server();
  await server.createBucket(BUCKET);
});
afterAll(async () => {
  server?.client.destroy();
  await server?.stop();
});
afterEach(() => {
  for (const chp of open.splice(0)) chp.close();
});

function options(prefix: string, extra: Partial<S3StoreOptions> = {}): S3StoreOptions {
  return { bucket: BUCKET, prefix, endpoint: server!.endpoint, ...S3_TEST_CONFIG, ...extra };
}

function checkpoint<T extends object>(prefix: string, name = 'job'): Checkpoint<T> {
  const store = s3Store(options(prefix));
  const chp = new Checkpoint<T>({ name, store, log: false, signals: false, interval: 0 });
  open.push(chp as unknown as Checkpoint<Record<string, unknown>>);
  return chp;
}

let prefix = '';
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describeStoreContract(
  s3Available
    ? [
        {
          label: 's3Store (moto)',
          make: () => s3Store(options((prefix = `c-${randomUUID()}`))),
          location: (name) =>
            expect.stringMatching(
              new RegExp(
                `^${literal(`s3://${BUCKET}/${prefix}/${name}@gen-`)}[0-9a-z]+-[0-9a-f]+$`,
              ),
            ),
          movedAside: (name, tag, count) =>
            Array.from({ length: count }, () =>
              expect.stringMatching(
                new RegExp(`^${literal(`s3://${BUCKET}/${prefix}/${name}.${tag}/gen-`)}.+\\.ckpt$`),
              ),
            ),
        },
      ]
    : [],
);

describeS3('s3Store behind a Checkpoint', () => {
  it('checks its options on the calling thread', () => {
    const err = thrownBy(() => s3Store({ bucket: 'b', leaseTtl: 0 }));
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toBe(
      'Expected `leaseTtl` to be an integer from 100 to 2147483647, got `0` (number)',
    );
    expect(s3Store(options('p')).locate('job')).toBe(`s3://${BUCKET}/p/job`);
  });

  it('saves in the background and restores in a new checkpoint', async () => {
    const p = `e-${randomUUID()}`;
    const chp = checkpoint<{ n: number; data: Float64Array }>(p);
    const state = chp.restore({ n: 0, data: new Float64Array(100_000) });
    state.n = 41;
    state.data.fill(1.5);
    chp.save();
    state.n = 42;
    expect(chp.sync()).toBe(true);
    await chp.flush();
    chp.close();
    const again = checkpoint<{ n: number; data: Float64Array }>(p);
    const restored = again.restore({ n: 0, data: new Float64Array(0) });
    expect(again.restored).toBe(true);
    expect(restored.n).toBe(42);
    expect(restored.data.length).toBe(100_000);
    expect(restored.data.every((x) => x === 1.5)).toBe(true);
  });

  it('refuses a second process while the first holds the lease', () => {
    const p = `e-${randomUUID()}`;
    const chp = checkpoint<{ n: number }>(p);
    chp.restore({ n: 0 });
    const openElsewhere = (): string =>
      execFileSync(process.execPath, [OPEN, JSON.stringify(options(p))], {
        encoding: 'utf8',
        timeout: 30_000,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    const out = openElsewhere();
    expect(JSON.parse(out)).toEqual([CheckpointLockedError.name, process.pid, hostname()]);
    chp.close(); // hands the lease back
    expect(openElsewhere()).toBe('opened\n');
  });
});
