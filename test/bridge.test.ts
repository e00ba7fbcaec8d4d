/**
 * The bridge between the synchronous Checkpoint and an asynchronous shared store running in
 * the background thread, tested with a folder that follows object-store rules (manifest
 * written last, leases with expiry and fencing): the store contract, restores in another
 * process with another cache ("another machine"), the local cache and its verification,
 * leases across processes, errors with their class and cause, and kills mid-save.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  bridgedStore,
  Checkpoint,
  CheckpointLockedError,
  type CheckpointStore,
  StoreError,
} from '../dist/index.js';
import { cleanedAfterEach, thrownBy } from './helpers.js';
import { describeStoreContract } from './store-contract.js';

const JOB = fileURLToPath(new URL('./fixtures/remote/job.mjs', import.meta.url));
const { tempDir, children, open } = cleanedAfterEach('rs-bridge-');

interface FolderOptions {
  root: string;
  leaseTtl?: number;
  failFile?: string;
  plainFailFile?: string;
  latency?: number;
  cache?: string;
  callTimeout?: number;
}

function folderStore({ cache, callTimeout, ...options }: FolderOptions): CheckpointStore {
  const target = {
    module: new URL('./fixtures/remote/folder-store.mjs', import.meta.url).href,
    name: 'createFolderStore',
    args: [options],
  };
  return bridgedStore(target, {
    location: (name) => `folder:${name}`,
    ...(cache === undefined ? {} : { cache }),
    ...(callTimeout === undefined ? {} : { callTimeout }),
  });
}

function checkpoint<T extends object>(store: CheckpointStore, name = 'job'): Checkpoint<T> {
  const chp = new Checkpoint<T>({ name, store, log: false, signals: false, interval: 0 });
  open.push(chp as unknown as Checkpoint<Record<string, unknown>>);
  return chp;
}

/** Operations the folder store logged (downloads), in order. */
const ops = (root: string): string[] =>
  existsSync(join(root, 'ops.log'))
    ? readFileSync(join(root, 'ops.log'), 'utf8').trim().split('\n')
    : [];

function runJob(mode: string, options: Record<string, unknown>): string {
  return execFileSync(process.execPath, [JOB, mode, JSON.stringify(options)], {
    encoding: 'utf8',
    timeout: 30_000,
  });
}

function startJob(mode: string, options: Record<string, unknown>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [JOB, mode, JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`job exited early with ${code}`)));
  });
}

const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

let lastRoot = '';
describeStoreContract([
  {
    label: 'bridgedStore (folder with object-store rules)',
    make: () => folderStore({ root: (lastRoot = tempDir()) }),
    location: (name) => expect.stringMatching(new RegExp(`^folder:${name.replace('.', '\\.')}@`)),
    movedAside: (name, tag, count) => (count === 0 ? [] : [`folder:${name}.${tag}`]),
  },
]);

describe('bridgedStore behind a Checkpoint', () => {
  it('saves in the background and restores in another process with another cache', async () => {
    const root = tempDir();
    const chp = checkpoint<{ n: number; data: Float64Array }>(folderStore({ root }));
    const state = chp.restore({ n: 0, data: new Float64Array(1000) });
    state.n = 41;
    state.data.fill(2.5);
    chp.save();
    state.n = 42;
    expect(chp.sync()).toBe(true);
    await chp.flush();
    chp.close();
    const out = JSON.parse(runJob('restore', { root, cache: tempDir() }));
    expect(out).toEqual({ n: 42, consistent: false, restored: true });
  });

  it('a restore on the machine that saved reads its cache; another machine downloads', () => {
    const root = tempDir();
    const cache = tempDir();
    const chp = checkpoint<{ n: number }>(folderStore({ root, cache }));
    chp.restore({ n: 0 });
    chp.save({ n: 7 });
    chp.close();
    const [cached] = readdirSync(cache);
    expect(cached).toMatch(/^job\.[0-9a-z]+-[0-9a-f]{8}\.ckpt$/);

    expect(JSON.parse(runJob('restore', { root, cache }))).toMatchObject({ n: 7, restored: true });
    expect(ops(root).filter((l) => l.startsWith('download'))).toEqual([]);
    expect(JSON.parse(runJob('restore', { root, cache: tempDir() }))).toMatchObject({ n: 7 });
    expect(ops(root).filter((l) => l.startsWith('download'))).toHaveLength(1);
  });

  it('a damaged cached copy fails its checksum and is downloaded again', () => {
    const root = tempDir();
    const cache = tempDir();
    const chp = checkpoint<{ n: number }>(folderStore({ root, cache }));
    chp.restore({ n: 0 });
    chp.save({ n: 9 });
    chp.close();
    const file = join(cache, readdirSync(cache)[0]!);
    const bytes = readFileSync(file);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff;
    writeFileSync(file, bytes);
    expect(JSON.parse(runJob('restore', { root, cache }))).toMatchObject({ n: 9, restored: true });
    expect(ops(root).filter((l) => l.startsWith('download'))).toHaveLength(1);
    expect(readFileSync(file).equals(bytes)).toBe(false);
  });

  it('keeps `keep` cached copies, like the store', () => {
    const root = tempDir();
    const cache = tempDir();
    const chp = checkpoint<{ n: number }>(folderStore({ root, cache }));
    chp.restore({ n: 0 });
    for (let n = 1; n <= 4; n++) chp.save({ n });
    chp.close();
    expect(readdirSync(cache)).toHaveLength(2);
  });

  it('a second process is refused with CheckpointLockedError naming the holder', async () => {
    const root = tempDir();
    const holder = await startJob('hold', { root, leaseTtl: 60_000 });
    const err = thrownBy(() => checkpoint(folderStore({ root })));
    expect(err).toBeInstanceOf(CheckpointLockedError);
    expect((err as CheckpointLockedError).message).toBe(
      `Checkpoint "job" is locked by pid ${holder.pid} on host ${hostname()}`,
    );
    expect((err as CheckpointLockedError).pid).toBe(holder.pid);
    expect((err as CheckpointLockedError).host).toBe(hostname());
  });

  it('the lease of a killed holder is taken over once it expires, not before', async () => {
    const root = tempDir();
    const holder = await startJob('hold', { root, leaseTtl: 1500 });
    await killed(holder);
    expect(thrownBy(() => checkpoint(folderStore({ root, leaseTtl: 1500 })))).toBeInstanceOf(
      CheckpointLockedError,
    );
    await new Promise((r) => setTimeout(r, 1700));
    const chp = checkpoint<{ n: number }>(folderStore({ root, leaseTtl: 1500 }));
    expect(chp.restore({ n: 3 })).toEqual({ n: 3 });
    const lease = JSON.parse(readFileSync(join(root, 'job', 'lease.json'), 'utf8'));
    expect(lease).toMatchObject({ pid: process.pid, token: 2 });
  });

  it('close() hands the lease back at once', () => {
    const root = tempDir();
    const chp = checkpoint(folderStore({ root }));
    chp.close();
    expect(existsSync(join(root, 'job', 'lease.json'))).toBe(false);
    checkpoint(folderStore({ root }));
  });

  it('saves of a growing, then a shrinking state each store their own bytes (one reused buffer, #17.4)', () => {
    const root = tempDir();
    const sizes = [3 << 20, 5 << 20, 1 << 20, 10];
    for (const [i, size] of sizes.entries()) {
      const chp = checkpoint<{ data: Uint8Array }>(folderStore({ root }));
      chp.restore({ data: new Uint8Array(0) });
      // Every earlier size saved again by this store first, so its buffer grows and shrinks.
      for (const earlier of sizes.slice(0, i)) chp.save({ data: new Uint8Array(earlier) });
      chp.save({ data: new Uint8Array(size).fill(i + 1) });
      chp.close();
      const other = checkpoint<{ data: Uint8Array }>(folderStore({ root, cache: tempDir() }));
      const { data } = other.restore({ data: new Uint8Array(0) });
      expect([data.length, data[0], data[size - 1]]).toEqual([size, i + 1, i + 1]);
      other.close();
    }
  });

  it('a store failure reaches save() as StoreError with its cause; nothing saved is lost', async () => {
    const root = tempDir();
    const failFile = join(tempDir(), 'down');
    const chp = checkpoint<{ n: number }>(folderStore({ root, failFile }));
    chp.restore({ n: 0 });
    chp.save({ n: 1 });
    writeFileSync(failFile, '');
    const err = thrownBy(() => chp.save({ n: 2 }));
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).message).toBe(
      'folder:job: write failed: connect ECONNREFUSED 127.0.0.1:1',
    );
    expect(((err as StoreError).cause as { code: string }).code).toBe('ECONNREFUSED');
    // A background save fails the same way, reported by flush().
    expect(chp.sync({ n: 3 })).toBe(true);
    await expect(chp.flush()).rejects.toThrow(StoreError);
    rmSync(failFile);
    chp.save({ n: 4 });
    chp.close();
    expect(JSON.parse(runJob('restore', { root, cache: tempDir() }))).toMatchObject({ n: 4 });
  });

  it("a store's own error (not a StoreError) arrives as StoreError naming the checkpoint, the original as cause", () => {
    const root = tempDir();
    const plainFailFile = join(tempDir(), 'bug');
    const chp = checkpoint<{ n: number }>(folderStore({ root, plainFailFile }));
    chp.restore({ n: 0 });
    writeFileSync(plainFailFile, '');
    const err = thrownBy(() => chp.save({ n: 1 }));
    rmSync(plainFailFile);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).message).toBe(
      'Cannot save checkpoint "job" at folder:job: boom in write',
    );
    expect((err as StoreError).cause).toMatchObject({
      name: 'TypeError',
      message: 'boom in write',
    });
  });

  it('a call that times out is undone when it finishes late: the lease it took is handed back', async () => {
    const root = tempDir();
    const err = thrownBy(() => checkpoint(folderStore({ root, latency: 800, callTimeout: 200 })));
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).message).toBe(
      "The store's lock() did not answer within 200 ms (background thread)",
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(existsSync(join(root, 'job', 'lease.json'))).toBe(false);
    const chp = checkpoint<{ n: number }>(folderStore({ root }));
    expect(chp.restore({ n: 5 })).toEqual({ n: 5 });
  });

  it('works from `node --input-type=module -e` (the worker does not inherit those flags)', () => {
    const root = tempDir();
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const fixture = new URL('./fixtures/remote/folder-store.mjs', import.meta.url).href;
    const script = `
      import { bridgedStore, Checkpoint } from ${JSON.stringify(dist)};
      const store = bridgedStore(
        { module: ${JSON.stringify(fixture)}, name: 'createFolderStore', args: [{ root: ${JSON.stringify(root)} }] },
        { location: (n) => 'folder:' + n, callTimeout: 10000 },
      );
      const chp = new Checkpoint({ name: 'job', store, log: false });
      chp.restore({ n: 0 });
      chp.save({ n: 1 });
      chp.close();
      console.log('saved');`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(out.trim()).toBe('saved');
    expect(JSON.parse(runJob('restore', { root }))).toMatchObject({ n: 1, restored: true });
  });

  it('SIGKILL at random moments mid-save: another machine restores a committed, whole state', async () => {
    const root = tempDir();
    let last = 0;
    for (let round = 0; round < 12; round++) {
      const child = await startJob('loop', { root, cache: tempDir(), leaseTtl: 400 });
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 250));
      await killed(child);
      // The killed holder's lease must expire first.
      await new Promise((r) => setTimeout(r, 450));
      const out = JSON.parse(runJob('restore', { root, cache: tempDir(), leaseTtl: 400 }));
      expect(out.consistent).toBe(true);
      expect(out.n).toBeGreaterThanOrEqual(last);
      last = out.n;
    }
    expect(last).toBeGreaterThan(0);
  }, 60_000);
});
