/**
 * `resume status` (#15.4) on a folder, and `resume list|show|export|status --store` on S3
 * (moto) and Redis: shard states, totals, JSON, --watch, and `--store` URL parsing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseStoreUrl } from '../dist/cli/store-url.js';
import { Checkpoint, type CheckpointStore } from '../dist/index.js';
import { redisStore } from '../dist/redis.js';
import { s3Store } from '../dist/s3.js';
import { cleanedAfterEach } from './helpers.js';
import { describeRedis, type RedisServer, startRedis } from './servers/redis.js';
import { describeS3, S3_TEST_CONFIG, type S3TestServer, startS3Server } from './servers/s3.js';

const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
const { children, open, tempDir } = cleanedAfterEach('rs-status-');
const S3_ENV = {
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_REGION: 'us-east-1',
};

function resume(args: string[]) {
  const run = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...S3_ENV, RESUME_DIR: '' },
  });
  return { code: run.status, out: run.stdout, err: run.stderr };
}

/** Shard `index` of "sweep" over 10 items: `upTo` items looked at, then saved (and closed unless `keepOpen`). */
function shard(
  where: { dir: string } | { store: CheckpointStore },
  index: number,
  count: number,
  upTo: number,
  keepOpen = false,
): Checkpoint {
  const chp = new Checkpoint({
    name: 'sweep',
    ...where,
    shard: { index, count },
    log: false,
    signals: false,
  });
  const s = chp.restore({ sum: 0 }) as { sum: number };
  for (const i of chp.range(10)) {
    if (i >= upTo) break;
    s.sum += i;
  }
  chp.save();
  if (keepOpen) open.push(chp);
  else chp.close();
  return chp;
}

describe('resume status --dir', () => {
  test('one line per shard and a total line; --json gives the same', () => {
    const dir = tempDir();
    shard({ dir }, 0, 4, 10); // done: 0, 4, 8
    shard({ dir }, 1, 4, 5); // stopped at 5: 1 done of 1, 5, 9
    shard({ dir }, 2, 4, 3, true); // running (held by this process): 1 done of 2, 6
    const text = resume(['status', 'sweep', '--dir', dir]);
    expect(text.code).toBe(0);
    const lines = text.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`"sweep": 4 shards in ${dir}`);
    expect(lines[1]).toMatch(/^SHARD +DONE +SAVED +AGE +HOLDER +LEASE +STATE$/);
    expect(lines[2]).toMatch(/^0 +3\/3 +\S+Z +\d+s +- +- +done$/);
    expect(lines[3]).toMatch(/^1 +1\/3 +\S+Z +\d+s +- +- +stopped$/);
    expect(lines[4]).toMatch(
      new RegExp(`^2 +1/2 +\\S+Z +\\d+s +pid ${process.pid} on \\S+ +live +running$`),
    );
    expect(lines[5]).toMatch(/^3 +- +- +- +- +- +missing$/);
    expect(lines[6]).toMatch(
      /^total {2}5 done, total unknown for 1 of 4 shards, [\d.]+ items\/s, ETA unknown \(1 running, 1 stopped, 1 done, 1 missing\)$/,
    );
    expect(lines).toHaveLength(7);

    const json = JSON.parse(resume(['status', 'sweep', '--dir', dir, '--json']).out);
    expect(
      json.shards.map((s: Record<string, unknown>) => [
        s.index,
        s.count,
        s.done,
        s.total,
        s.live,
        s.state,
      ]),
    ).toEqual([
      [0, 4, 3, 3, false, 'done'],
      [1, 4, 1, 3, false, 'stopped'],
      [2, 4, 1, 2, true, 'running'],
      [3, 4, 0, null, false, 'missing'],
    ]);
    expect(json.shards[2].holder).toMatchObject({ pid: process.pid });
    expect(json.shards[3].savedAt).toBeNull();
    expect([json.done, json.total, json.eta]).toEqual([5, null, null]);
  });

  test('a finished array: every shard done, total, rate and ETA 0', () => {
    const dir = tempDir();
    for (let index = 0; index < 3; index++) shard({ dir }, index, 3, 10);
    const json = JSON.parse(resume(['status', 'sweep', '--dir', dir, '--json']).out);
    expect(json.shards.map((s: Record<string, unknown>) => s.state)).toEqual([
      'done',
      'done',
      'done',
    ]);
    expect([json.done, json.total, json.eta]).toEqual([10, 10, 0]);
    expect(resume(['status', 'sweep', '--dir', dir]).out).toMatch(
      /\ntotal {2}10\/10 \(100\.0%\), .*finished \(3 done\)\n$/,
    );
  });

  test('--count lists shards not started yet; no shards at all is an error', () => {
    const dir = tempDir();
    const json = JSON.parse(
      resume(['status', 'sweep', '--dir', dir, '--count', '2', '--json']).out,
    );
    expect(json.shards.map((s: Record<string, unknown>) => s.state)).toEqual([
      'missing',
      'missing',
    ]);
    expect(resume(['status', 'sweep', '--dir', dir])).toEqual({
      code: 1,
      out: '',
      err: `resume: no shards of "sweep" in ${dir} (looked for sweep.shard-<index>-of-<count>; pass --count <n> to list missing ones)\n`,
    });
    expect(resume(['status', 'sweep', '--dir', dir, '--count', '0']).code).toBe(2);
  });

  test('--watch --json prints a report every 2 s until interrupted', async () => {
    const dir = tempDir();
    shard({ dir }, 0, 1, 10);
    const child = spawn(process.execPath, [
      cli,
      'status',
      'sweep',
      '--dir',
      dir,
      '--watch',
      '--json',
    ]);
    children.push(child);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    while (out.split('\n').length < 3) await once(child.stdout, 'data');
    child.kill('SIGINT');
    const [first, second] = out
      .split('\n')
      .map((line) => (line === '' ? undefined : JSON.parse(line)));
    expect([first.done, first.total, second.done]).toEqual([10, 10, 10]);
  }, 20_000);
});

describe('--store URLs', () => {
  test.each([
    [
      's3://bucket/runs/a',
      undefined,
      {},
      { kind: 's3', options: { bucket: 'bucket', prefix: 'runs/a' } },
    ],
    [
      's3://bucket',
      'http://127.0.0.1:9000',
      {},
      {
        kind: 's3',
        options: {
          bucket: 'bucket',
          prefix: '',
          endpoint: 'http://127.0.0.1:9000',
          forcePathStyle: true,
          region: 'us-east-1',
        },
      },
    ],
    [
      's3://b/p',
      undefined,
      { AWS_ENDPOINT_URL_S3: 'http://minio:9000', AWS_REGION: 'eu-west-1' },
      {
        kind: 's3',
        options: {
          bucket: 'b',
          prefix: 'p',
          endpoint: 'http://minio:9000',
          forcePathStyle: true,
          region: 'eu-west-1',
        },
      },
    ],
    [
      'redis://cache:6380/jobs',
      undefined,
      {},
      {
        kind: 'redis',
        url: 'redis://cache:6380',
        prefix: 'jobs',
        shown: 'redis://cache:6380/jobs',
      },
    ],
    [
      'redis://cache?db=2',
      undefined,
      { REDIS_PASSWORD: 'pw' },
      {
        kind: 'redis',
        url: 'redis://:pw@cache/2',
        prefix: 'resume',
        shown: 'redis://cache/resume',
      },
    ],
  ])('%s (endpoint %s, env %j)', (url, endpoint, env, expected) => {
    expect(parseStoreUrl(url, endpoint, env)).toEqual(expected);
  });

  test.each([
    [
      'file:///tmp',
      "Expected `--store` to be s3://bucket/prefix or redis://host:port/prefix, got 'file:///tmp'",
    ],
    [
      'bucket/prefix',
      "Expected `--store` to be s3://bucket/prefix or redis://host:port/prefix, got 'bucket/prefix'",
    ],
    ['redis://h?db=x', "Expected `db` in `--store` to be an integer, got 'x'"],
  ])('%s is a usage error', (url, message) => {
    expect(() => parseStoreUrl(url, undefined, {})).toThrow(new TypeError(message));
    expect(resume(['list', '--store', url]).code).toBe(2);
  });
});

describeS3('resume --store s3:// (moto)', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
    await server.createBucket('cli');
  }, 40_000);
  afterAll(async () => {
    await server?.stop();
  });

  test('status, list, show and export read the bucket without taking any lease', () => {
    const store = s3Store({
      bucket: 'cli',
      prefix: 'runs',
      endpoint: server.endpoint,
      ...S3_TEST_CONFIG,
    });
    shard({ store }, 0, 2, 10);
    const running = shard({ store }, 1, 2, 4, true);
    const at = ['--store', 's3://cli/runs', '--endpoint', server.endpoint];
    const json = JSON.parse(resume(['status', 'sweep', ...at, '--json']).out);
    expect(json.where).toBe('s3://cli/runs');
    expect(
      json.shards.map((s: Record<string, unknown>) => [s.done, s.total, s.live, s.state]),
    ).toEqual([
      [5, 5, false, 'done'],
      [2, 5, true, 'running'],
    ]);
    expect(json.shards[1].holder).toMatchObject({ pid: process.pid });

    const list = JSON.parse(resume(['list', ...at, '--json']).out);
    expect(
      list.map((l: Record<string, unknown>) => [l.name, l.generations, l.status, l.live]).sort(),
    ).toEqual([
      ['sweep.shard-0-of-2', 1, 'ok', false],
      ['sweep.shard-1-of-2', 1, 'ok', true],
    ]);
    const show = JSON.parse(resume(['show', 'sweep.shard-1-of-2', ...at, '--json']).out);
    expect([show.info.shard, show.info.progress, show.state]).toEqual([
      { index: 1, count: 2 },
      { done: 2, total: 5 },
      { sum: 'number 4' },
    ]);
    expect(JSON.parse(resume(['export', 'sweep.shard-0-of-2', ...at]).out)).toEqual({ sum: 20 });
    // The holder kept its lease all along: it still saves.
    running.save();
    const nothing = resume(['show', 'nothing', ...at]);
    expect(nothing.code).toBe(1);
    // The last line: the AWS SDK may warn about the Node version before it.
    expect(nothing.err).toMatch(
      /\nresume: no checkpoint "nothing" in s3:\/\/cli\/runs\n$|^resume: no checkpoint "nothing" in s3:\/\/cli\/runs\n$/,
    );
  }, 60_000);

  test("show finds a checkpoint whose name needs a hash in its folder name (the store's folder, #16.3)", () => {
    const store = s3Store({
      bucket: 'cli',
      prefix: 'hashed',
      endpoint: server.endpoint,
      ...S3_TEST_CONFIG,
    });
    const chp = new Checkpoint({ name: 'runs/a b', store, log: false, signals: false });
    const state = chp.restore({ n: 0 }) as { n: number };
    state.n = 7;
    chp.save();
    chp.close();
    const at = ['--store', 's3://cli/hashed', '--endpoint', server.endpoint];
    const shown = resume(['export', 'runs/a b', ...at]);
    expect([shown.code, shown.out === '' ? undefined : JSON.parse(shown.out)]).toEqual([
      0,
      { n: 7 },
    ]);
  }, 60_000);
});

describeRedis('resume --store redis://', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  }, 20_000);
  afterAll(async () => {
    await server?.dispose();
  });

  test('status and export read the keys without taking any lease', () => {
    const store = redisStore({ url: server.url, prefix: 'jobs' });
    shard({ store }, 0, 2, 10, true);
    shard({ store }, 1, 2, 10);
    const at = ['--store', `${server.url}/jobs`];
    const json = JSON.parse(resume(['status', 'sweep', ...at, '--json']).out);
    expect(
      json.shards.map((s: Record<string, unknown>) => [s.done, s.total, s.live, s.state]),
    ).toEqual([
      [5, 5, true, 'running'],
      [5, 5, false, 'done'],
    ]);
    expect(JSON.parse(resume(['export', 'sweep.shard-1-of-2', ...at]).out)).toEqual({ sum: 25 });
  }, 30_000);
});
