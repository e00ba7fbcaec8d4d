// The demo: simulated annealing on a 400-city travelling salesman problem, about half a
// minute of pure CPU work. Press Ctrl-C (or kill it) at any moment, run it again, and it
// continues where it stopped; the final tour is the same as an uninterrupted run's.
//
//   npm run demo              run, or continue the interrupted run
//   npm run demo -- --fresh   start over
import { Checkpoint, Random } from 'resumable-state';

const CITIES = 400;
const EPOCHS = 300;
const MOVES_PER_EPOCH = 600_000;

export function solveTour({ fresh = false } = {}) {
  // The problem itself is fixed by its own seed: every run solves the same map.
  const map = new Random(2024);
  const xs = Float64Array.from({ length: CITIES }, () => map.float(0, 1000));
  const ys = Float64Array.from({ length: CITIES }, () => map.float(0, 1000));
  const dist = new Float64Array(CITIES * CITIES);
  for (let a = 0; a < CITIES; a++) {
    for (let b = 0; b < CITIES; b++)
      dist[a * CITIES + b] = Math.hypot(xs[a] - xs[b], ys[a] - ys[b]);
  }
  const tourLength = (tour) => {
    let sum = 0;
    for (let i = 0; i < CITIES; i++) sum += dist[tour[i] * CITIES + tour[(i + 1) % CITIES]];
    return sum;
  };

  // 1. A checkpoint named after this function; 2. restore, or start from these values.
  //    `progress: true` draws a bar with the rate and ETA on an interactive terminal,
  //    starting at the restored epoch.
  const chp = new Checkpoint({ seed: 7, interval: '1s', clean: fresh, progress: true });
  const rng = chp.random;
  const s = chp.restore({
    epoch: 0,
    tour: Int32Array.from({ length: CITIES }, (_, i) => i),
    temperature: 200,
    best: Number.POSITIVE_INFINITY,
    bestTour: new Int32Array(CITIES),
    accepted: 0,
    length: 0,
  });
  if (chp.restored) {
    console.log(
      `Continuing from epoch ${s.epoch} of ${EPOCHS} (best so far ${s.best.toFixed(1)}).`,
    );
  } else {
    rng.shuffle(s.tour);
    s.length = tourLength(s.tour);
    console.log(
      `Starting a fresh search: ${CITIES} cities, ${EPOCHS} epochs. Press Ctrl-C any time.`,
    );
  }

  const started = Date.now();
  const showsBar = process.stderr.isTTY === true && !process.env.CI;
  const { tour } = s;
  // 3. chp.range resumes at the first epoch not done, and after each one saves when due
  //    (every second here); on Ctrl-C it saves there and exits.
  for (const epoch of chp.range(EPOCHS)) {
    for (let m = 0; m < MOVES_PER_EPOCH; m++) {
      // 2-opt move: reverse the path between positions i+1 and j.
      let i = rng.int(0, CITIES - 1);
      let j = rng.int(0, CITIES - 1);
      if (i > j) [i, j] = [j, i];
      if (j - i < 2 || (i === 0 && j === CITIES - 1)) continue;
      const a = tour[i];
      const b = tour[i + 1];
      const c = tour[j];
      const d = tour[(j + 1) % CITIES];
      const delta =
        dist[a * CITIES + c] + dist[b * CITIES + d] - dist[a * CITIES + b] - dist[c * CITIES + d];
      if (delta < 0 || rng.next() < Math.exp(-delta / s.temperature)) {
        for (let lo = i + 1, hi = j; lo < hi; lo++, hi--)
          [tour[lo], tour[hi]] = [tour[hi], tour[lo]];
        s.length += delta;
        s.accepted++;
        if (s.length < s.best - 1e-9) {
          s.best = s.length;
          s.bestTour.set(tour);
        }
      }
    }
    s.temperature *= 0.975;
    s.epoch = epoch + 1;
    // The bar shows progress on a terminal; a pipe or a log file gets a line now and then.
    if (!showsBar && s.epoch % 15 === 0) {
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      console.log(
        `epoch ${String(s.epoch).padStart(3)}/${EPOCHS}  temperature ${s.temperature.toFixed(3).padStart(8)}  tour ${s.length.toFixed(1).padStart(8)}  best ${s.best.toFixed(1)}  (${secs}s)`,
      );
    }
  }
  chp.save();
  chp.close();
  return { best: s.best, tour: s.bestTour, accepted: s.accepted };
}

const fresh = process.argv.includes('--fresh');
// Ctrl-C (SIGINT, exit 130) or a kill (SIGTERM, 143): the checkpoint saved before exiting.
process.on('exit', (code) => {
  if (code === 130 || code === 143) {
    console.log('\nInterrupted; the search so far is saved. Run `npm run demo` again to continue.');
  }
});
const result = solveTour({ fresh });
let hash = 0;
for (const city of result.tour) hash = (Math.imul(hash, 31) + city) | 0;
console.log(
  `Best tour length ${result.best.toFixed(3)} after ${result.accepted} accepted moves (tour hash ${(hash >>> 0).toString(16)}).`,
);
console.log(
  'Run `npm run demo` again to see it finish at once, or `npm run demo -- --fresh` to start over.',
);
