/**
 * A simulated array job (#15): 4 shard processes (test/fixtures/shards/worker.mjs, index and
 * count from the engines' variables), each SIGKILLed at random moments several times and
 * started again, on the file store and on S3 (moto). Then collectShards must cover every item
 * exactly once with the values of an uninterrupted single-process run, and `resume status
 * --json` must report the shards while they run (live holders) and after (all done).
 * KILL_SEED=<n> replays the kill timings of an earlier run (printed in failure messages).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CheckpointStore, collectShards, fileStore, Random } from '../../dist/index.js';
import { s3Store } from '../../dist/s3.js';
import { cleanedAfterEach } from '../helpers.js';
import { describeS3, S3_TEST_CONFIG, type S3TestServer, startS3Server } from '../servers/s3.js';

const WORKER = fileURLToPath(new URL('../fixtures/shards/worker.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const SEED = Number(process.env.KILL_SEED ?? Date.now() % 1_000_000);
const SHARDS = 4;
const ITEMS = 240;
/**
 * Kills per shard after the two waves (each of which kills every shard once too): fewer on
 * S3, where a start costs seconds on a loaded 2-core machine (SDK load, lease, download).
 */
const KILLS = { file: 2, s3: 1 };
/** A run that neither prints nor ends by then is a hang. */
const RUN_TIMEOUT_MS = 20_000;

const { children, tempDir } = cleanedAfterEach('rs-array-');

type Config = { name: string; n: number; dir?: string; s3?: object; interval?: number };
const killsOf = (config: Config) => (config.s3 === undefined ? KILLS.file : KILLS.s3);
type ShardState = { items: number[]; values: number[] };

/** Engine variables of each shard: Kubernetes, SLURM and AWS Batch in turn. */
function engineEnv(index: number): Record<string, string> {
  switch (index % 3) {
    case 0:
      return { JOB_COMPLETION_INDEX: String(index), RESUME_SHARDS: String(SHARDS) };
    case 1:
      return {
        SLURM_ARRAY_TASK_ID: String(index + 1),
        SLURM_ARRAY_TASK_MIN: '1',
        SLURM_ARRAY_TASK_COUNT: String(SHARDS),
      };
    default:
      return { AWS_BATCH_JOB_ARRAY_INDEX: String(index), RESUME_SHARDS: String(SHARDS) };
  }
}

interface Run {
  child: ChildProcess;
  /** Resolves with the items done at start once the worker printed `resumed`. */
  resumed: Promise<number>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>;
}

function start(config: Config, env: Record<string, string>, hold = false): Run {
  const child = spawn(process.execPath, [WORKER, JSON.stringify(config)], {
    env: { ...process.env, ...env, HOLD: hold ? '1' : '0' },
    stdio: [hold ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const resumed = new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
      const match = /resumed (\d+)/.exec(out);
      if (match !== null) resolve(Number(match[1]));
    });
    child.on('exit', () => reject(new Error(`exited before resuming: ${out}${err}`)));
  });
  resumed.catch(() => {});
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk;
  });
  const exit = once(child, 'exit').then(([code, signal]) => {
    clearTimeout(timer);
    if (code !== 0 && code !== 75 && signal !== 'SIGKILL') {
      throw new Error(`worker failed (${code ?? signal}, seed ${SEED}): ${err}`);
    }
    return { code, signal, out };
  });
  return { child, resumed, exit };
}

/** Starts shard `index` until it runs (a lease left by a killed run may still be live). */
async function startRunning(config: Config, index: number, hold = false): Promise<Run> {
  for (;;) {
    const run = start(config, engineEnv(index), hold);
    // An exit before resuming rejects \`resumed\` at the same moment: take the exit's outcome then.
    const first = await Promise.race([
      run.resumed.then(
        () => 'resumed',
        () => run.exit,
      ),
      run.exit,
    ]);
    if (first === 'resumed') return run;
    if ((first as { code: number | null }).code !== 75) {
      throw new Error(`shard ${index} did not start (seed ${SEED}): ${JSON.stringify(first)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

/** Kills shard `index` KILLS times at random moments of its run, then lets it finish. */
async function chaos(config: Config, index: number, random: Random): Promise<void> {
  for (let kill = 0; kill < killsOf(config); kill++) {
    const run = await startRunning(config, index);
    await new Promise((resolve) => setTimeout(resolve, random.int(20, 250)));
    run.child.kill('SIGKILL');
    const { code } = await run.exit;
    if (code === 0) return; // finished before the kill
  }
  const run = await startRunning(config, index);
  expect((await run.exit).code).toBe(0);
}

function status(args: string[]): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [CLI, 'status', ...args, '--json'], {
    env: { ...process.env, ...S3_ENV },
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk;
  });
  return once(child, 'exit').then(([code]) => {
    if (code !== 0) throw new Error(`resume status failed (${code}): ${err}`);
    return JSON.parse(out) as Record<string, unknown>;
  });
}

const S3_ENV = {
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_REGION: 'us-east-1',
};

/** Item → value of one uninterrupted run of the same job in one process (1 shard). */
async function singleRun(): Promise<Map<number, number>> {
  const dir = tempDir();
  const run = start(
    { name: 'single', n: ITEMS, dir },
    { RESUME_SHARDS: '1', JOB_COMPLETION_INDEX: '0' },
  );
  expect((await run.exit).code).toBe(0);
  const [state] = collectShards<ShardState>('single', { count: 1, dir });
  return new Map(state!.items.map((item, k) => [item, state!.values[k]!]));
}

let expected: Map<number, number>;
beforeAll(async () => {
  expected = await singleRun();
  expect([...expected.keys()]).toEqual(Array.from({ length: ITEMS }, (_, i) => i));
}, 30_000);

/**
 * The whole scenario on one store: a first wave killed at random, a second wave held after
 * restore while `resume status` looks at it, then kills and restarts until every shard ends.
 */
async function arrayJob(config: Config, where: string[], store?: CheckpointStore): Promise<void> {
  const random = new Random(SEED);
  const reader = store ?? fileStore(config.dir!);
  reader.generations('warm-up'); // S3: loads the SDK before the timings below matter
  // First wave: each shard killed at a random moment once it has saved something.
  await Promise.all(
    Array.from({ length: SHARDS }, async (_, index) => {
      const run = await startRunning(config, index);
      await new Promise((resolve) => setTimeout(resolve, random.int(50, 300)));
      const name = `${config.name}.shard-${index}-of-${SHARDS}`;
      for (let waited = 0; reader.generations(name).length === 0 && waited < 20_000; waited += 20) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      run.child.kill('SIGKILL');
      await run.exit;
    }),
  );
  // Second wave held after restore: every shard is live, none moves while status reads.
  const held = await Promise.all(
    Array.from({ length: SHARDS }, (_, index) => startRunning(config, index, true)),
  );
  const during = await status([config.name, ...where]);
  const pids = held.map((run) => run.child.pid);
  const shards = during.shards as Record<string, unknown>[];
  expect(
    shards.map((s) => [
      s.index,
      s.count,
      s.total,
      (s.holder as { pid: number } | null)?.pid,
      s.live,
      s.state,
    ]),
  ).toEqual(
    Array.from({ length: SHARDS }, (_, index) => [
      index,
      SHARDS,
      ITEMS / SHARDS,
      pids[index],
      true,
      'running',
    ]),
  );
  const resumedAt = await Promise.all(held.map((run) => run.resumed));
  // What status reads is the last save, which each held shard has just restored.
  expect(shards.map((s) => s.done)).toEqual(resumedAt);
  expect(during.done).toBe(resumedAt.reduce((a, b) => a + b, 0));
  expect(during.total).toBe(ITEMS);
  for (const run of held) {
    run.child.stdin!.write('go\n');
    run.child.kill('SIGKILL');
    await run.exit;
  }
  // Then kills at random and restarts, all shards at once, until each one finishes.
  await Promise.all(Array.from({ length: SHARDS }, (_, index) => chaos(config, index, random)));

  const states = collectShards<ShardState>(config.name, {
    count: SHARDS,
    ...(store === undefined ? { dir: config.dir! } : { store }),
  });
  const union = new Map<number, number>();
  states.forEach((state, index) => {
    // Each shard did its own items, in order, each once.
    expect(state.items).toEqual(
      Array.from({ length: ITEMS / SHARDS }, (_, k) => index + k * SHARDS),
    );
    for (const [k, item] of state.items.entries()) union.set(item, state.values[k]!);
  });
  expect(states.reduce((n, state) => n + state.items.length, 0)).toBe(ITEMS);
  expect(new Map([...union].sort((a, b) => a[0] - b[0]))).toEqual(expected);

  const after = await status([config.name, ...where]);
  expect(
    (after.shards as Record<string, unknown>[]).map((s) => [
      s.done,
      s.total,
      s.live,
      s.holder,
      s.state,
    ]),
  ).toEqual(
    Array.from({ length: SHARDS }, () => [ITEMS / SHARDS, ITEMS / SHARDS, false, null, 'done']),
  );
  expect([after.done, after.total, after.eta]).toEqual([ITEMS, ITEMS, 0]);
}

describe('array job on the file store', () => {
  test(`4 shards killed at random and restarted: every item once, as one uninterrupted run (seed ${SEED})`, async () => {
    const dir = tempDir();
    await arrayJob({ name: 'sweep', n: ITEMS, dir }, ['--dir', dir]);
  }, 60_000);
});

describeS3('array job on S3 (moto)', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
    await server.createBucket('array');
  }, 40_000);
  afterAll(async () => {
    await server?.stop();
  });

  test(`4 shards killed at random and restarted: every item once, as one uninterrupted run (seed ${SEED})`, async () => {
    const s3 = { bucket: 'array', prefix: 'jobs', endpoint: server.endpoint };
    const store = s3Store({ ...s3, ...S3_TEST_CONFIG });
    await arrayJob(
      { name: 'sweep', n: ITEMS, s3, interval: 100 },
      ['--store', 's3://array/jobs', '--endpoint', server.endpoint],
      store,
    );
  }, 90_000);
});
