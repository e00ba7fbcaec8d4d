// once() across two runs (#13.3): prints `ran <key>` for each step that runs its function.
// argv: dir.
import { Checkpoint } from '../../dist/index.js';

const chp = new Checkpoint({ name: 'once', dir: process.argv[2], log: false });
for (const key of ['a', 'b']) {
  const value = await chp.once(key, () => {
    process.stdout.write(`ran ${key}\n`);
    return key.toUpperCase();
  });
  process.stdout.write(`${key}=${value}\n`);
}
chp.close();
