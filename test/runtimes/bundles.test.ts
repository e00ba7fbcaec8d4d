/**
 * Bundled apps (#12.3): test/runtimes/bundle-app.mjs, which imports the library by its
 * package name, is bundled with esbuild, webpack and rollup, and each bundle runs from an
 * empty folder (no node_modules anywhere above it): background saves from a busy loop, the
 * flush at exit, SIGTERM, with the file store and the memory store.
 *
 * BUNDLE_LIBRARY=<folder> bundles another build of the library (to measure an old one).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import { build as esbuild } from 'esbuild';
import { rollup } from 'rollup';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import webpack from 'webpack';
import { unpackCheckpoint } from '../../dist/codec/container.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const work = join(root, '.runtimes/bundles');
const app = join(work, 'app');
const entry = join(app, 'bundle-app.mjs');
const made: string[] = [];
const live: ChildProcess[] = [];

afterAll(() => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** The app's folder: the app and `node_modules/resumable-state` linked to the library. */
function prepareApp(): void {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  cpSync(fileURLToPath(new URL('./bundle-app.mjs', import.meta.url)), entry);
  // A package of its own: else the library's package.json above it would resolve
  // `resumable-state` to itself (self-reference) before node_modules.
  writeFileSync(
    join(app, 'package.json'),
    '{ "name": "bundle-app", "private": true, "type": "module" }\n',
  );
  symlinkSync(process.env.BUNDLE_LIBRARY ?? root, join(app, 'node_modules/resumable-state'));
}

beforeAll(prepareApp);

const isBuiltin = (id: string) => id.startsWith('node:') || builtinModules.includes(id);

const bundlers: Record<string, (out: string) => Promise<void>> = {
  async esbuild(out) {
    await esbuild({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: join(out, 'app.mjs'),
      logLevel: 'error',
    });
  },
  async webpack(out) {
    const compiler = webpack({
      mode: 'production',
      context: app,
      entry,
      target: 'node20',
      output: { path: out, filename: 'app.mjs', module: true, chunkFormat: 'module' },
      experiments: { outputModule: true },
      optimization: { minimize: false },
    });
    await new Promise<void>((resolve, reject) =>
      compiler.run((err, stats) => {
        if (err !== null && err !== undefined) reject(err);
        else if (stats?.hasErrors()) reject(new Error(stats.toString('errors-only')));
        else compiler.close(() => resolve());
      }),
    );
  },
  async rollup(out) {
    const bundle = await rollup({
      input: entry,
      plugins: [nodeResolve({ preferBuiltins: true })],
      external: isBuiltin,
      logLevel: 'silent',
    });
    await bundle.write({ file: join(out, 'app.mjs'), format: 'es' });
    await bundle.close();
  },
};

/** A copy of the bundle's output folder in an empty temp folder, with no node_modules above. */
function runFolder(out: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'rs-bundle-'));
  made.push(dir);
  for (let up = dir; up !== dirname(up); up = dirname(up)) {
    expect(existsSync(join(up, 'node_modules')), `node_modules above ${dir}`).toBe(false);
  }
  cpSync(out, dir, { recursive: true });
  return dir;
}

interface Run {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: string | null }>;
}

function start(dir: string, args: string[]): Promise<Run> {
  const child = spawn(process.execPath, ['app.mjs', ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve({ child, out: () => out, err: () => err, exit }));
    void exit.then(({ code }) => reject(new Error(`exited early (${code}): ${err}`)));
  });
}

function saved(dir: string) {
  const path = join(dir, 'ck/bundled.ckpt');
  if (!existsSync(path)) return undefined;
  const { meta, envelope } = unpackCheckpoint(readFileSync(path), path);
  return { saves: meta.saves, state: envelope.state as { i: number; twice: number } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(Object.keys(bundlers))('a bundle made by %s', (bundler) => {
  const out = join(work, bundler);

  beforeAll(async () => {
    await bundlers[bundler]!(out);
  });

  test('runs from an empty folder: background saves in a 3 s busy loop, flushed at exit', async () => {
    const dir = runFolder(out);
    const run = await start(dir, ['file', join(dir, 'ck'), '3']);
    // Saves seen on disk while the main thread spins: written by the background thread.
    const seen = new Set<number>();
    let running = true;
    void run.exit.then(() => {
      running = false;
    });
    while (running) {
      const s = saved(dir);
      if (s !== undefined && running) seen.add(s.saves);
      await sleep(50);
    }
    expect(await run.exit).toEqual({ code: 0, signal: null });
    expect(run.err()).toBe('');
    expect(seen.size).toBeGreaterThan(0);
    const printed = JSON.parse(run.out().split('\n').at(-2)!) as { saves: number };
    const last = saved(dir)!;
    expect(last.saves).toBe(printed.saves); // the last sync()'s save was flushed at exit
    expect(last.state.twice).toBe(last.state.i * 2);
    console.log(
      `${bundler}: ${seen.size} saves seen during the busy loop, ${printed.saves} in all`,
    );
  });

  test('SIGTERM in the busy loop saves the state and exits with 143', async () => {
    const dir = runFolder(out);
    const run = await start(dir, ['file', join(dir, 'ck'), 'forever']);
    // Once a first background save is on disk, the thread and its signal watcher run.
    while (saved(dir) === undefined) await sleep(50);
    run.child.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 143, signal: null });
    const last = saved(dir)!;
    expect(run.err()).toBe(`resumable-state: saved "bundled" on signal (save #${last.saves})\n`);
    expect(last.state.twice).toBe(last.state.i * 2);
  });

  test('with the memory store: syncs in the busy loop, and SIGTERM exits with 143', async () => {
    const dir = runFolder(out);
    const done = await start(dir, ['memory', join(dir, 'ck'), '1']);
    expect(await done.exit).toEqual({ code: 0, signal: null });
    expect(done.err()).toBe('');
    expect(JSON.parse(done.out().split('\n').at(-2)!).saves).toBeGreaterThan(0);
    const run = await start(dir, ['memory', join(dir, 'ck'), 'forever']);
    await sleep(500);
    run.child.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 143, signal: null });
    expect(run.err()).toMatch(/^resumable-state: saved "bundled" on signal \(save #\d+\)\n$/);
    expect(readdirSync(dir).includes('ck')).toBe(false);
  });
});
