// The app that CI bundles with esbuild, webpack and rollup and runs from an empty folder
// (scripts/runtimes.mjs, #12.3). It imports the library by its package name, as users do.
//   node app.js <file|memory> <dir> <seconds|forever>
// Prints "ready", spins in a busy synchronous loop calling sync() (interval 300 ms), and at
// the end prints {"saves": n} of the last save it started (flushed at exit).
import { Checkpoint, memoryStore } from 'resumable-state';

const [store, dir, duration] = process.argv.slice(2);
const chp = new Checkpoint({
  name: 'bundled',
  dir,
  interval: '300ms',
  ...(store === 'memory' ? { store: memoryStore() } : {}),
});
const s = chp.restore({ i: 0, twice: 0 });
process.stdout.write('ready\n');
const end =
  duration === 'forever' ? Number.POSITIVE_INFINITY : Date.now() + Number(duration) * 1000;
while (Date.now() < end) {
  for (let k = 0; k < 1000; k++) {
    s.i += 1;
    s.twice = s.i * 2; // consistent at every step boundary
    chp.sync();
  }
}
process.stdout.write(`${JSON.stringify({ saves: chp.info?.saves ?? 0, i: s.i })}\n`);
