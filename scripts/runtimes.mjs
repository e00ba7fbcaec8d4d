// `npm run test:runtimes` (CI runs it after `npm test`): the library on Node 20, 22, 24 and 26,
// Bun and Deno, and in apps bundled with esbuild, webpack and rollup (#12.3, #12.4, #13).
//
// Installs each Node major other than the running one from npm (the node-<os>-<arch> packages
// hold the binary; npm alone, no other download) into .runtimes/node-<major>/, Bun (its
// @oven/bun-<os>-<arch> package: the `bun` package's postinstall, which links it, is not run)
// into .runtimes/bun/ and Deno (the `deno` package) into .runtimes/deno/, then runs
// test/runtimes/ with vitest: the runtime subset on each version, the cross-version restore
// matrix, and the bundles. Installed versions are reused by later runs.
//   node scripts/runtimes.mjs [vitest arguments…]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const MAJORS = ['20', '22', '24', '26'];
const root = new URL('..', import.meta.url).pathname;
const cache = join(root, '.runtimes');
const pkg = `node-${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`;

/** The binary of Node `major`: this one, or installed from npm into the cache. */
function nodeOf(major) {
  if (process.versions.node.split('.')[0] === major) return process.execPath;
  const bin = installed(`node-${major}`, `${pkg}@${major}`, `${pkg}/bin/node`);
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`Node ${major}: ${version} (${bin})`);
  return bin;
}

/** Installs `spec` from npm into .runtimes/<dir>/ unless `bin` (relative to it) is there. */
function installed(dir, spec, bin) {
  const prefix = join(cache, dir);
  const path = join(prefix, 'node_modules', bin);
  if (!existsSync(path)) {
    mkdirSync(prefix, { recursive: true });
    console.log(`installing ${spec} into ${prefix}`);
    execFileSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--no-save',
        '--no-package-lock',
        '--no-audit',
        '--no-fund',
        spec,
      ],
      { stdio: 'inherit' },
    );
  }
  return path;
}

const platform = process.platform === 'win32' ? 'windows' : process.platform;
const arch = process.arch === 'arm64' ? 'aarch64' : process.arch;
const bun = installed(
  'bun',
  `@oven/bun-${platform}-${arch}@1`,
  `@oven/bun-${platform}-${arch}/bin/bun`,
);
const denoPackage = `@deno/${process.platform}-${process.arch}${process.platform === 'linux' ? '-glibc' : ''}`;
const deno = installed('deno', 'deno@2', `${denoPackage}/deno`);
for (const [name, bin] of [
  ['Bun', bun],
  ['Deno', deno],
]) {
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).split('\n')[0].trim();
  console.log(`${name}: ${version} (${bin})`);
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
