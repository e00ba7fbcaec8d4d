// Builds dist/ from src/ with the TypeScript compiler (#12.1).
//   node scripts/build.mjs             clean build: removes dist/ first (`npm run build`,
//                                      `prepack`), so no file of a deleted source is packed
//   node scripts/build.mjs --if-stale  only when a source is newer than the last build
//                                      (`prepare`: `npm install`/`npm ci` in a clone, and the
//                                      git installs of users, where dist/ does not exist yet)
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** True when dist/ is missing or older than a source or the build config. */
export function stale() {
  const sources = Math.max(
    newest(join(root, 'src')),
    mtime(join(root, 'tsconfig.json')),
    mtime(join(root, 'tsconfig.build.json')),
    mtime(join(root, 'scripts/build-worker.mjs')),
  );
  return mtime(join(root, 'dist/index.js')) < sources;
}

export function build({ ifStale = false } = {}) {
  if (ifStale && !stale()) return;
  if (!ifStale) rmSync(join(root, 'dist'), { recursive: true, force: true });
  // The compiler of this clone (a devDependency: npm installs those for git installs too).
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  // The background thread's code as a string, so bundled apps need no worker file (#12.3).
  execFileSync(process.execPath, [join(root, 'scripts/build-worker.mjs')], {
    cwd: root,
    stdio: 'inherit',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build({ ifStale: process.argv.includes('--if-stale') });
}
