/**
 * The package as its users get it (#12.1): `npm pack` run in a clean copy of this working
 * tree (no dist/, no node_modules/ of its own), so `prepack` has to build it. Packed once
 * per state of the sources and shared by every test file that installs it in a scratch app
 * (the tarball checks, the consumer type checks, the bundled apps): the tarball is kept in
 * the system temp folder under a hash of the files it is made from (all but the tests).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

export interface Packed {
  /** Absolute path of the `.tgz`. */
  tarball: string;
  /** Paths inside the package, as `package.json` names them: `dist/index.js`. */
  files: string[];
}

/** The files a clean clone of this working tree has: tracked or new, not ignored. */
function cloneFiles(): string[] {
  const out = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  // A node_modules that is a symlink (worktrees sharing one) is not matched by `node_modules/`.
  return out
    .split('\0')
    .filter((f) => f !== '' && f !== 'node_modules' && existsSync(join(root, f)))
    .sort();
}

/** Packs the package (once per state of its sources) and returns the tarball and its files. */
export function packedTarball(): Packed {
  const files = cloneFiles();
  const hash = createHash('sha256');
  // Editing a test does not change the package: no new pack for that.
  for (const f of files.filter((f) => !f.startsWith('test/'))) {
    hash.update(`${f}\0`).update(readFileSync(join(root, f)));
  }
  const key = hash.digest('hex').slice(0, 16);
  // One cache folder per working tree: several clones on one machine do not share it.
  const rootKey = createHash('sha256').update(root).digest('hex').slice(0, 8);
  const cache = join(tmpdir(), `resumable-state-pack-${rootKey}`);
  const done = join(cache, key);
  if (!existsSync(join(done, 'files.json'))) {
    mkdirSync(cache, { recursive: true });
    const work = mkdtempSync(join(cache, 'tmp-'));
    const clone = join(work, 'clone');
    for (const f of files) {
      mkdirSync(dirname(join(clone, f)), { recursive: true });
      cpSync(join(root, f), join(clone, f));
    }
    symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'));
    execFileSync('npm', ['pack', '--pack-destination', work], { cwd: clone, stdio: 'pipe' });
    rmSync(clone, { recursive: true, force: true });
    const [tgz] = readdirSync(work).filter((f) => f.endsWith('.tgz'));
    if (tgz === undefined) throw new Error(`npm pack made no tarball in ${work}`);
    const listed = execFileSync('tar', ['-tzf', join(work, tgz)], { encoding: 'utf8' })
      .split('\n')
      .filter((p) => p !== '')
      .map((p) => p.replace(/^package\//, ''))
      .sort();
    writeFileSync(join(work, 'files.json'), JSON.stringify({ tarball: tgz, files: listed }));
    try {
      renameSync(work, done);
    } catch {
      // Another test file packed the same sources at the same time: keep its copy.
      rmSync(work, { recursive: true, force: true });
    }
    // Tarballs of earlier states of the sources are not needed any more.
    for (const old of readdirSync(cache)) {
      if (old !== key && !old.startsWith('tmp-')) {
        rmSync(join(cache, old), { recursive: true, force: true });
      }
    }
  }
  const { tarball, files: packedFiles } = JSON.parse(
    readFileSync(join(done, 'files.json'), 'utf8'),
  ) as { tarball: string; files: string[] };
  return { tarball: join(done, tarball), files: packedFiles };
}

/**
 * Makes `dir` an app that depends on the packed package: writes its package.json
 * (`type` as given) and runs `npm install <tarball>` there, from npm's cache when it can.
 * Returns what npm printed. `links`: packages of this repository's node_modules made
 * visible to the app by a symlink (type packages, peer dependencies), no download needed.
 */
export function installPacked(
  dir: string,
  { type = 'module', links = [] }: { type?: 'module' | 'commonjs'; links?: string[] } = {},
): string {
  const { tarball } = packedTarball();
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'scratch-app', private: true, type }, null, 2),
  );
  const run = spawnSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=warn', tarball],
    { cwd: dir, encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`npm install failed (${run.status}): ${run.stderr}`);
  for (const name of links) {
    mkdirSync(dirname(join(dir, 'node_modules', name)), { recursive: true });
    symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name));
  }
  return run.stdout + run.stderr;
}
