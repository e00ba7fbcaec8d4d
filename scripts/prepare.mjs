// Makes `npm test`, `npm run demo` and `npm run bench` work on a fresh clone:
// installs dependencies when node_modules is missing or older than the lock file,
// then builds dist/ when any source is newer than the last build.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });

const installed = join(root, 'node_modules/.package-lock.json');
if (mtime(installed) < mtime(join(root, 'package-lock.json'))) {
  run('npm install --no-audit --no-fund');
}

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}
const built = join(root, 'dist/index.js');
const sources = Math.max(newest(join(root, 'src')), mtime(join(root, 'tsconfig.build.json')));
const buildScripts = mtime(join(root, 'scripts/build-worker.mjs'));
if (mtime(built) < Math.max(sources, buildScripts)) run('npm run build');
