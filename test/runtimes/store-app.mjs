/**
 * A job saving through a shared store, on any runtime, for test/runtimes/shared-stores.test.ts.
 *   <runtime> store-app.mjs <mode> '{"kind":"redis"|"s3","store":{…},"cache":…,"lockWait":…}'
 * Every line it prints is JSON. Its state: { n, sum: 1 + … + n, data: Float64Array with n at
 * n % size }, whole when those agree.
 *  restore: opens "job", prints { n, consistent, restored }, closes; or { error: code, pid,
 *    host } when the checkpoint is held.
 *  serve: prints { pid, host, n } once it holds "job", then for each stdin line `save <n>`
 *    saves the state of n and prints { saved: n }, or { error: code, message } if refused;
 *    closes the checkpoint at the end of stdin and prints { closed: true }.
 *  busy: prints { pid, host } once it holds "job", then spins: n += 1 and sync() (due every
 *    50 ms), never yielding; when a sync() throws, prints { error: code, message } and exits.
 */
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { Checkpoint } from '../../dist/index.js';

const [mode, json] = process.argv.slice(2);
const { kind, store: options, cache, lockWait } = JSON.parse(json);
const module = await import(`../../dist/${kind}.js`);
const store =
  kind === 'redis'
    ? module.redisStore({ ...options, cache })
    : module.s3Store({ ...options, cache });
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

let chp;
try {
  chp = new Checkpoint({
    name: 'job',
    store,
    log: false,
    interval: mode === 'busy' ? 50 : 0,
    ...(lockWait === undefined ? {} : { lockWait }),
  });
} catch (err) {
  print({ error: err.code, pid: err.pid, host: err.host });
  process.exit(0);
}
const state = chp.restore({ n: 0, sum: 0, data: new Float64Array(1 << 16) });
const at = (n) => {
  state.n = n;
  state.sum = (n * (n + 1)) / 2;
  state.data[n % state.data.length] = n;
};

if (mode === 'restore') {
  const consistent =
    state.sum === (state.n * (state.n + 1)) / 2 &&
    (state.n === 0 || state.data[state.n % state.data.length] === state.n);
  print({ n: state.n, consistent, restored: chp.restored });
  chp.close();
} else if (mode === 'serve') {
  print({ pid: process.pid, host: hostname(), n: state.n });
  for await (const line of createInterface({ input: process.stdin })) {
    const n = Number(line.split(' ')[1]);
    try {
      at(n);
      chp.save();
      print({ saved: n });
    } catch (err) {
      print({ error: err.code, message: err.message });
    }
  }
  chp.close();
  print({ closed: true });
} else if (mode === 'busy') {
  print({ pid: process.pid, host: hostname() });
  try {
    for (;;) {
      at(state.n + 1);
      chp.sync();
    }
  } catch (err) {
    print({ error: err.code, message: err.message });
    process.exit(0);
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
