// Makes `npm test`, `npm run demo` and `npm run bench` work on a fresh clone:
// installs dependencies when node_modules is missing or older than the lock file,
// then builds dist/ when any source is newer than the last build.
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from './build.mjs';

const root = new URL('..', import.meta.url).pathname;
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

const installed = join(root, 'node_modules/.package-lock.json');
if (mtime(installed) < mtime(join(root, 'package-lock.json'))) {
  execSync('npm install --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
}

build({ ifStale: true });
