/**
 * The batch example, end to end: starts the stand-in API, runs the batch job over 10,000
 * items, SIGKILLs it at random moments and restarts it until it finishes, then asks the
 * API how often each item was called. Run: npm run demo:batch [-- --durable batched]
 * Options: --durable step|batched, --items N (10000), --kills N (8), --json (summary only).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const arg = (name, fallback) =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback;
const durable = arg('--durable', 'step');
const kills = Number(arg('--kills', 8));
const ITEMS = Number(arg('--items', 10_000));
const json = process.argv.includes('--json');
const say = (line) => json || console.log(line);
const dir = mkdtempSync(join(tmpdir(), 'batch-example-'));

const server = spawn(process.execPath, [here('./batch-server.mjs')], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const port = await new Promise((resolve) =>
  server.stdout.once('data', (d) => resolve(String(d).trim())),
);

function runJob(killAfterMs) {
  const job = spawn(
    process.execPath,
    [here('./batch-job.mjs'), port, String(ITEMS), durable, dir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  job.stdout.on('data', (d) => (out += d));
  const timer =
    killAfterMs === undefined ? undefined : setTimeout(() => job.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve) =>
    job.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out: out.trim() });
    }),
  );
}

say(`batch of ${ITEMS} API calls, durable: '${durable}', killed ${kills} times at random`);
for (let i = 1; ; i++) {
  const { code, signal, out } = await runJob(i <= kills ? 200 + Math.random() * 600 : undefined);
  say(`run ${i}: ${signal === 'SIGKILL' ? 'killed (SIGKILL)' : `exited ${code}: ${out}`}`);
  if (code === 0 && out.startsWith('done')) break;
}
const calls = await (await fetch(`http://127.0.0.1:${port}/calls`)).json();
server.kill();
const recorded = JSON.parse(readFileSync(join(dir, 'recorded.json'), 'utf8'));
const summary = { items: ITEMS, recorded: Object.keys(recorded).length, calls: 0, answers: 0 };
summary.answeredTwice = 0; // a kill came between an answer and its record
summary.calledAfterRecorded = 0; // must be 0: an answer was recorded, then paid for again
for (const [id, entry] of Object.entries(calls)) {
  summary.calls += entry.calls;
  summary.answers += entry.successes.length;
  if (entry.successes.length > 1) summary.answeredTwice++;
  if (recorded[id] !== entry.successes.at(-1)) summary.calledAfterRecorded++;
}
if (json) console.log(JSON.stringify(summary));
say(
  `API: ${summary.recorded} of ${ITEMS} items recorded, ${summary.calls} calls (${summary.calls - summary.answers} failed and were retried); ` +
    `${summary.answeredTwice} items answered twice (a kill between the answer and its record), ` +
    `${summary.calledAfterRecorded} called again after their answer was recorded`,
);
rmSync(dir, { recursive: true, force: true });
