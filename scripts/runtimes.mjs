// `npm run test:runtimes` (CI runs it after `npm test`): the library on Node 20, 22, 24 and 26,
// Bun and Deno, and in apps bundled with esbuild, webpack and rollup (#12.3, #12.4, #13).
//
// Installs each Node major other than the running one, Bun and Deno from npm into .runtimes/
// (scripts/install-runtimes.mjs; reused by later runs), then runs test/runtimes/ with vitest:
// the runtime subset on each version, the cross-version restore matrix, the shared stores
// from Bun and Deno, `bunx resume` on the installed package, and the bundles.
//   node scripts/runtimes.mjs [vitest arguments…]
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { bunBinary, denoBinary, nodeBinary, versionOf } from './install-runtimes.mjs';

const MAJORS = ['20', '22', '24', '26'];
const root = new URL('..', import.meta.url).pathname;

/** The binary of Node `major`: this one, or installed from npm into the cache. */
function nodeOf(major) {
  const bin = nodeBinary(major);
  if (bin !== process.execPath) console.log(`Node ${major}: ${versionOf(bin)} (${bin})`);
  return bin;
}

const bun = bunBinary();
const deno = denoBinary();
for (const [name, bin] of [
  ['Bun', bun],
  ['Deno', deno],
]) {
  console.log(`${name}: ${versionOf(bin)} (${bin})`);
}

const runtimes = {
  ...Object.fromEntries(MAJORS.map((major) => [major, nodeOf(major)])),
  bun,
  deno,
};
const started = Date.now();
try {
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--config',
      'test/runtimes/vitest.config.ts',
      ...process.argv.slice(2),
    ],
    { cwd: root, stdio: 'inherit', env: { ...process.env, RUNTIMES: JSON.stringify(runtimes) } },
  );
} catch (err) {
  process.exitCode = err.status ?? 1;
}
console.log(`runtimes and bundles: ${((Date.now() - started) / 1000).toFixed(0)} s`);
