// Cost of a sync() that is not due, against an empty loop and a Date.now() check:
//   node --expose-gc bench/sync-cost.mjs [--runs 5] [--quick]
// Also checks that a hot sync() loop does see the flag the background thread raises
// (a compiler that hoisted the load out of the loop would make it never return true).
import { distUrl, freshDir, median, now, parseArgs, RESULT_PREFIX, removeDir } from './common.mjs';

const { Checkpoint } = await import(distUrl());

const args = parseArgs(process.argv.slice(2));
const log = (message) => process.stderr.write(`  [sync] ${message}\n`);
const CALLS = args.quick ? 20_000_000 : 200_000_000;
const CLOCK_CALLS = CALLS / 10; // a Date.now() check is ~70x slower: fewer calls, same precision

const dir = freshDir();
const chp = new Checkpoint({ name: 'sync', dir, interval: '1h', signals: false, log: false });
const state = chp.restore({ step: 0 });

function syncLoop(n) {
  let saved = 0;
  for (let i = 0; i < n; i++) {
    state.step = i;
    if (chp.sync()) saved++;
  }
  return saved;
}

function emptyLoop(n) {
  let saved = 0;
  for (let i = 0; i < n; i++) {
    state.step = i;
    if (i === -1) saved++;
  }
  return saved;
}

let last = Date.now();
function clockLoop(n) {
  let saved = 0;
  for (let i = 0; i < n; i++) {
    state.step = i;
    if (Date.now() - last > 30_000) {
      last = Date.now();
      saved++;
    }
  }
  return saved;
}

const loops = {
  empty: [emptyLoop, CALLS],
  sync: [syncLoop, CALLS],
  clock: [clockLoop, CLOCK_CALLS],
};
const ns = { empty: [], sync: [], clock: [] };
log('warming up');
for (const [fn, n] of Object.values(loops)) fn(n);
for (let run = 0; run < args.runs; run++) {
  for (const [name, [fn, n]] of Object.entries(loops)) {
    const t = now();
    if (fn(n) !== 0) throw new Error(`${name} loop saved, which it should not have`);
    ns[name].push(((now() - t) * 1e6) / n);
  }
  log(`run ${run + 1}/${args.runs}: sync ${ns.sync.at(-1).toFixed(2)} ns/call`);
}
chp.close();

// A due flag raised by the background thread must reach a hot loop: interval 50 ms.
const dueDir = freshDir();
const due = new Checkpoint({ name: 'due', dir: dueDir, interval: 50, signals: false, log: false });
due.restore({ step: 0 });
const t0 = now();
let calls = 0;
let seenAfter;
for (;;) {
  calls++;
  if (due.sync()) {
    seenAfter = now() - t0;
    break;
  }
  if ((calls & 0xfffff) === 0 && now() - t0 > 5000) break;
}
await due.flush();
due.close();
removeDir(dueDir);
removeDir(dir);

const result = {
  calls: CALLS,
  clockCalls: CLOCK_CALLS,
  ns,
  median: Object.fromEntries(Object.entries(ns).map(([k, v]) => [k, median(v)])),
  dueSeenAfterMs: seenAfter, // undefined: a hot loop never saw the flag within 5 s
};
process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
