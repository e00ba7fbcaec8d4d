// Why bench/stores.mjs times the file store's 100 MB save at about 3x what bench/run.mjs does:
//   node scripts/prepare.mjs && node --expose-gc bench/save-after-restore.mjs [--runs 7]
// Three ways to save the same 100 MB of doubles (compression 'none'), in alternating rounds:
//   steady:  one open checkpoint saving again and again (bench/run.mjs)
//   restore: a new checkpoint per round that first restores the 100 MB saved before (bench/stores.mjs)
//   fresh:   a new checkpoint per round that starts clean (no restore), then saves
//   restore+gc: as restore, with a full GC (node --expose-gc) between the restore and the save
import { randomFillSync } from 'node:crypto';
import { distUrl, freshDir, median, now, parseArgs, removeDir } from './common.mjs';

const { Checkpoint } = await import(distUrl());
const args = parseArgs(process.argv.slice(2));
const runs = Number(args.runs ?? 7);
const N = (100 * 2 ** 20) / 8;
const options = { name: 'bench', log: false, signals: false, compression: 'none', interval: '1h' };
const kinds = ['restore', 'fresh', ...(globalThis.gc ? ['restore+gc'] : [])];
const dirs = Object.fromEntries(['steady', ...kinds].map((k) => [k, freshDir()]));
const times = Object.fromEntries(['steady', ...kinds].map((k) => [k, []]));
const initial = { data: randomFillSync(new Float64Array(N)) };

const steady = new Checkpoint({ ...options, dir: dirs.steady });
steady.restore({ data: randomFillSync(new Float64Array(N)) });
for (let round = 0; round < runs; round++) {
  let t = now();
  steady.save();
  times.steady.push(now() - t);
  for (const kind of kinds) {
    const chp = new Checkpoint({ ...options, dir: dirs[kind], clean: kind === 'fresh' });
    chp.restore(initial);
    if (kind === 'restore+gc') globalThis.gc();
    t = now();
    chp.save();
    times[kind].push(now() - t);
    chp.close();
  }
}
steady.close();
for (const dir of Object.values(dirs)) removeDir(dir);
for (const [kind, list] of Object.entries(times)) {
  console.log(
    `${kind.padEnd(8)} median ${median(list).toFixed(0)} ms  (${list.map((x) => x.toFixed(0)).join(' ')})`,
  );
}
