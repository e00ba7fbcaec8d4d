/**
 * The batch job: calls the API once per item, 32 at a time, through chp.once(), so a
 * restart after a crash skips every item whose answer is recorded and never pays twice.
 * Usage: node examples/batch-job.mjs <port> [items=10000] [durable=step] [dir]
 * With `dir`, it ends by writing dir/recorded.json: item → the API call whose answer it kept.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Checkpoint } from 'resumable-state';

const [port, count = '10000', durable = 'step', dir] = process.argv.slice(2);
const chp = new Checkpoint({
  name: 'batch-example',
  durable,
  retries: 3,
  retryDelay: 20,
  ...(dir === undefined ? {} : { dir }),
});
const items = Array.from({ length: Number(count) }, (_, i) => i);
const before = chp.stats().done;

async function fetchItem(id) {
  const res = await fetch(`http://127.0.0.1:${port}/item/${id}`);
  if (!res.ok) throw new Error(`item ${id}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

// 32 workers pull from one queue: at most 32 calls in flight.
async function runAll(ids) {
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      await chp.once(`item:${id}`, () => fetchItem(id)).catch(() => {}); // failed() tells
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

await runAll(items);
// Items that failed every retry in this run get more passes.
for (let pass = 0; chp.failed().length > 0 && pass < 20; pass++) {
  await runAll(chp.failed().map((key) => Number(key.slice('item:'.length))));
}
// Every answer, from the records (nothing is fetched again): which call of the API it was.
const recorded = {};
for (const id of items) recorded[id] = (await chp.once(`item:${id}`, () => fetchItem(id))).call;
const { done, failed } = chp.stats();
chp.save({ finished: true }); // folds the journal into one snapshot
chp.close();
if (dir !== undefined) writeFileSync(join(dir, 'recorded.json'), JSON.stringify(recorded));
console.log(`done ${done} (${done - before} this run), failed ${failed}`);
