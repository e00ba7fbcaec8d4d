// The runtimes `npm run test:runtimes` and `npm run bench:runtimes` use, installed from npm
// (npm alone, no other download) into .runtimes/ and reused by later runs: a Node major (the
// node-<os>-<arch> packages hold the binary), Bun (its @oven/bun-<os>-<arch> package: the
// `bun` package's postinstall, which links it, is not run) and Deno (the `deno` package).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const cache = join(root, '.runtimes');
const os = process.platform === 'win32' ? 'win' : process.platform;

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

/** `v22.23.5`, `1.4.5`, `deno 2.9.6 (…)`: the first line `bin --version` prints. */
export const versionOf = (bin) =>
  execFileSync(bin, ['--version'], { encoding: 'utf8' }).split('\n')[0].trim();

/** The binary of Node `major`: the running one, or installed from npm into the cache. */
export function nodeBinary(major) {
  if (process.versions.node.split('.')[0] === major) return process.execPath;
  const pkg = `node-${os}-${process.arch}`;
  return installed(`node-${major}`, `${pkg}@${major}`, `${pkg}/bin/node`);
}

/** The binary of Bun 1. */
export function bunBinary() {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const arch = process.arch === 'arm64' ? 'aarch64' : process.arch;
  const pkg = `@oven/bun-${platform}-${arch}`;
  return installed('bun', `${pkg}@1`, `${pkg}/bin/bun`);
}

/** The binary of Deno 2. */
export function denoBinary() {
  const pkg = `@deno/${process.platform}-${process.arch}${process.platform === 'linux' ? '-glibc' : ''}`;
  return installed('deno', 'deno@2', `${pkg}/deno`);
}
