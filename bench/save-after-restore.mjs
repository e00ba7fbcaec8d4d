// Why bench/stores.mjs timed the file store's 100 MB save at about 3x what bench/run.mjs does:
//   node scripts/prepare.mjs && node --expose-gc bench/save-after-restore.mjs [--runs 7]
// The same 100 MB of doubles (compression 'none') saved under each condition in turn, in
// alternating rounds so the machine's drift hits all of them (#17.4):
//   steady:     one open checkpoint saving again and again (bench/run.mjs)
//   restore:    a new checkpoint per round that first restores the 100 MB saved before
//               (bench/stores.mjs)
//   fresh:      a new checkpoint per round that starts clean (no restore), then saves
//   restore+gc: as restore, with a full GC (node --expose-gc) between the restore and the save
//   restore+rm: as restore, right after deleting another 100 MB file, as bench/stores.mjs's
//               raw write did just before the next save (removeDir)
//   restore+sync: as restore, after `sync` (no dirty pages of earlier rounds left)
//   raw:        a raw write + fsync + rename + fsync folder of as many bytes (the limit)
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  distUrl,
  freshDir,
  median,
  now,
  parseArgs,
  rawDurableWrite,
  removeDir,
} from './common.mjs';

const { Checkpoint } = await import(distUrl());
const args = parseArgs(process.argv.slice(2));
const runs = Number(args.runs ?? 7);
const N = (100 * 2 ** 20) / 8;
const options = { name: 'bench', log: false, signals: false, compression: 'none', interval: '1h' };
const kinds = [
  'restore',
  'fresh',
  ...(globalThis.gc ? ['restore+gc'] : []),
  'restore+rm',
  'restore+sync',
];
const dirs = Object.fromEntries(['steady', ...kinds].map((k) => [k, freshDir()]));
const times = Object.fromEntries(['steady', ...kinds, 'raw'].map((k) => [k, []]));
const initial = { data: randomFillSync(new Float64Array(N)) };
const bytes = new Uint8Array(initial.data.buffer);

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
    if (kind === 'restore+rm') {
      const dir = freshDir();
      writeFileSync(join(dir, 'other'), bytes);
      spawnSync('sync');
      removeDir(dir);
    }
    if (kind === 'restore+sync') spawnSync('sync');
    t = now();
    chp.save();
    times[kind].push(now() - t);
    chp.close();
  }
  times.raw.push(rawDurableWrite(bytes));
}
steady.close();
for (const dir of Object.values(dirs)) removeDir(dir);
for (const [kind, list] of Object.entries(times)) {
  console.log(
    `${kind.padEnd(12)} median ${median(list).toFixed(0)} ms  (${list.map((x) => x.toFixed(0)).join(' ')})`,
  );
}
