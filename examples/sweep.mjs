/**
 * An array job on one machine: a parameter sweep (Monte Carlo prices of an option for 160
 * volatilities) split over N shard processes, as a Kubernetes Indexed Job, a SLURM array or
 * an AWS Batch array would run it. Each process gets its index and the count through the
 * variables those engines set (JOB_COMPLETION_INDEX and RESUME_SHARDS here) and uses
 * `shard: 'auto'`. Some processes are SIGKILLed at random and started again (as a preempted
 * task is), `resume status` shows the array's progress, and collectShards() gathers the
 * shards' results, which are compared with a single-process run of the same sweep.
 *
 * Run: npm run demo:sweep [-- --shards 4 --kills 6]
 * As one task of a real array (what each pod, SLURM task or Batch child runs):
 *   node examples/sweep.mjs --task [--dir <folder>]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { Checkpoint, collectShards, Random } from '../dist/index.js';

const arg = (name, fallback) =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback;
const here = fileURLToPath(import.meta.url);
const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

/** The sweep: volatilities from 5% to 84.5%. */
const GRID = Array.from({ length: 160 }, (_, k) => Math.round((0.05 + k * 0.005) * 1000) / 1000);
const PATHS = 60_000;

/** Monte Carlo price of a one-year call (spot 100, strike 105, rate 2%) at volatility `sigma`. */
function price(sigma) {
  const random = new Random(`sweep-${sigma}`); // the same draws for sigma in any process
  let sum = 0;
  for (let p = 0; p < PATHS; p++) {
    const spot = 100 * Math.exp(0.02 - (sigma * sigma) / 2 + sigma * random.normal(0, 1));
    sum += Math.max(0, spot - 105);
  }
  return Math.round((Math.exp(-0.02) * sum * 1e6) / PATHS) / 1e6;
}

/** One task of the array: this shard's volatilities, resumed after any kill. */
function task(dir, name) {
  const chp = new Checkpoint({ name, dir, shard: 'auto', interval: '100ms' });
  const s = chp.restore({ prices: [] });
  for (const sigma of chp.each(GRID)) s.prices.push([sigma, price(sigma)]);
  chp.save(); // the last save says every item is done: `resume status` shows this shard `done`
  chp.close();
}

if (process.argv.includes('--task')) {
  task(arg('--dir', '.checkpoints'), arg('--name', 'sweep'));
} else {
  const shards = Number(arg('--shards', 4));
  let kills = Number(arg('--kills', 6));
  const dir = mkdtempSync(join(tmpdir(), 'sweep-example-'));
  const chaos = new Random(Number(arg('--seed', Date.now() % 100_000)));
  const status = () => {
    const args = ['status', 'sweep', '--dir', dir, '--count', String(shards)];
    const run = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    console.log(run.stdout || run.stderr);
  };

  /** Runs shard `index` until it finishes, killing it while `kills` remain (at random moments). */
  async function shard(index) {
    for (let run = 1; ; run++) {
      const child = spawn(process.execPath, [here, '--task', '--dir', dir], {
        env: { ...process.env, JOB_COMPLETION_INDEX: String(index), RESUME_SHARDS: String(shards) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let killed = false;
      const timer =
        kills > 0 && chaos.next() < 0.6
          ? setTimeout(
              () => {
                if (kills <= 0) return;
                kills--;
                killed = true;
                child.kill('SIGKILL');
              },
              chaos.int(300, 1500),
            )
          : undefined;
      const [code] = await new Promise((resolve) => child.on('exit', (...r) => resolve(r)));
      clearTimeout(timer);
      if (killed) {
        console.log(`shard ${index}: run ${run} killed (SIGKILL); starting it again`);
      } else if (code === 0) {
        console.log(`shard ${index}: run ${run} finished`);
        return;
      } else {
        throw new Error(`shard ${index} failed with exit code ${code}`);
      }
    }
  }

  console.log(`sweep of ${GRID.length} volatilities over ${shards} shards, in ${dir}`);
  const running = Promise.all(Array.from({ length: shards }, (_, i) => shard(i)));
  await new Promise((resolve) => setTimeout(resolve, 2000));
  console.log('\n$ resume status sweep (while the array runs)');
  status();
  await running;
  console.log('$ resume status sweep (after)');
  status();

  // The reduce step: three lines.
  const parts = collectShards('sweep', { count: shards, dir });
  const prices = parts.flatMap((part) => part.prices).sort((a, b) => a[0] - b[0]);
  const atTwenty = prices.find(([sigma]) => sigma === 0.2);
  console.log(
    `gathered ${prices.length} prices; at 20% volatility the call is worth ${atTwenty[1]}`,
  );

  // The same sweep in one process, never interrupted.
  const single = join(dir, 'single');
  process.env.JOB_COMPLETION_INDEX = '0';
  process.env.RESUME_SHARDS = '1';
  task(single, 'single');
  const [alone] = collectShards('single', { count: 1, dir: single });
  const equal = isDeepStrictEqual(prices, alone.prices);
  console.log(
    equal
      ? `equal to a single-process run: yes (${alone.prices.length} prices, every one the same)`
      : 'NOT equal to a single-process run',
  );
  rmSync(dir, { recursive: true, force: true });
  process.exitCode = equal ? 0 : 1;
}
