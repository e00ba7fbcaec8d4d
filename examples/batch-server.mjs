/**
 * A stand-in for a paid API, for the batch example: GET /item/<id> answers after a random
 * delay (0-20 ms) with { id, value, call }, or fails with 503 one time in 20. It counts
 * every call per item: GET /calls returns { [id]: { calls, successes: [call ids] } }.
 * Prints its port on stdout. Usage: node examples/batch-server.mjs [port]
 */
import { createServer } from 'node:http';

const byItem = new Map();
let nextCall = 1;

const server = createServer((req, res) => {
  const match = /^\/item\/(\d+)$/.exec(req.url ?? '');
  if (req.url === '/calls') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(Object.fromEntries(byItem)));
    return;
  }
  if (match === null) {
    res.statusCode = 404;
    res.end();
    return;
  }
  const id = Number(match[1]);
  const call = nextCall++;
  const entry = byItem.get(id) ?? { calls: 0, successes: [] };
  byItem.set(id, entry);
  entry.calls++;
  setTimeout(() => {
    if (Math.random() < 0.05) {
      res.statusCode = 503;
      res.end('busy, try again');
      return;
    }
    entry.successes.push(call);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ id, value: (id * 2654435761) % 2 ** 32, call }));
  }, Math.random() * 20);
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
