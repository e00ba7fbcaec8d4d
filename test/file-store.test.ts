/**
 * The file store, directly and behind a Checkpoint: layout, modes, generations, atomic saves
 * under injected I/O faults (a faulty `fs` object, no module mocking), cleanup of leftovers,
 * and unsafe names. A shared contract suite runs against both the file and the memory store.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { unpackCheckpoint } from '../dist/codec/container.js';
import {
  Checkpoint,
  type CheckpointStore,
  type FileSystem,
  fileStore,
  memoryStore,
  StoreError,
} from '../dist/index.js';
import { setWritebackHandOff, writebackPace } from '../dist/store/writeback.js';
import { Background } from '../dist/writer/background.js';
import { Control } from '../dist/writer/protocol.js';
import { distModule, exitedPid, thrownBy } from './helpers.js';
import { describeStoreContract, type StoreCase } from './store-contract.js';

const made: string[] = [];
const open: Checkpoint<Record<string, unknown>>[] = [];

afterEach(() => {
  for (const chp of open.splice(0)) chp.close();
  for (const dir of made.splice(0)) nodeFs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder in the system temp dir, removed after the test. */
function tempDir(): string {
  const dir = nodeFs.mkdtempSync(join(tmpdir(), 'rs-file-store-'));
  made.push(dir);
  return dir;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const asText = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');
const listing = (dir: string): string[] => nodeFs.readdirSync(dir).sort();
const mode = (path: string): number => nodeFs.statSync(path).mode & 0o777;

function checkpoint<T extends object>(
  name: string,
  dir: string,
  extra: { store?: CheckpointStore; keep?: number; log?: (line: string) => void } = {},
): Checkpoint<T> {
  const chp = new Checkpoint<T>({
    name,
    dir,
    store: extra.store ?? fileStore(dir),
    log: extra.log ?? false,
    signals: false,
    ...(extra.keep === undefined ? {} : { keep: extra.keep }),
  });
  open.push(chp as unknown as Checkpoint<Record<string, unknown>>);
  return chp;
}

/** Restores `name` from `dir` with a fresh Checkpoint and a plain file store, then closes it. */
function restoreFresh<T extends object>(name: string, dir: string, initial: T): T {
  const chp = checkpoint<T>(name, dir);
  const state = chp.restore(initial);
  expect(chp.restored).toBe(true);
  chp.close();
  return state;
}

/** An errno error shaped like the ones node:fs throws. */
function errno(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const messages: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EACCES: 'permission denied',
    EROFS: 'read-only file system',
  };
  return Object.assign(new Error(`${code}: ${messages[code]}, ${syscall} '${path}'`), {
    code,
    syscall,
    path,
  });
}

/**
 * node:fs with switchable faults. Only save temp files (`….tmp-…`) are affected by the write
 * and open faults, so the lock file and folder fsync keep working.
 */
interface Faults {
  /** Bytes the temp file may still take before writes fail with ENOSPC (Infinity: no fault). */
  spaceLeft: number;
  /** When set, opening a temp file throws this code. */
  openError: string | undefined;
  /** When set, renames whose target matches throw this code. */
  renameError: { code: string; target: RegExp } | undefined;
  /** Temp file paths that were opened. */
  opened: string[];
  /** When set, opening this folder (to fsync it) throws this code. */
  folderError: { code: string; folder: string } | undefined;
}

function faultyFs(): { fs: FileSystem; faults: Faults } {
  const tempFds = new Map<number, string>();
  const faults: Faults = {
    spaceLeft: Number.POSITIVE_INFINITY,
    openError: undefined,
    renameError: undefined,
    opened: [],
    folderError: undefined,
  };
  const fs: FileSystem = {
    ...nodeFs,
    openSync: ((path: nodeFs.PathLike, flags?: nodeFs.OpenMode, m?: nodeFs.Mode | null) => {
      const p = String(path);
      const isTemp = p.includes('.ckpt.tmp-'); // a save's temp file (not a lock's)
      if (isTemp && faults.openError !== undefined) throw errno(faults.openError, 'open', p);
      if (faults.folderError?.folder === p) throw errno(faults.folderError.code, 'open', p);
      const fd = nodeFs.openSync(path, flags ?? 'r', m);
      if (isTemp) {
        tempFds.set(fd, p);
        faults.opened.push(p);
      }
      return fd;
    }) as FileSystem['openSync'],
    writeSync: ((fd: number, buffer: Uint8Array | string, ...rest: unknown[]) => {
      const path = tempFds.get(fd);
      if (path === undefined || typeof buffer === 'string' || !Number.isFinite(faults.spaceLeft)) {
        return (nodeFs.writeSync as (...args: unknown[]) => number)(fd, buffer, ...rest);
      }
      const offset = (rest[0] as number | undefined) ?? 0;
      const length = (rest[1] as number | undefined) ?? buffer.byteLength - offset;
      if (faults.spaceLeft <= 0) throw errno('ENOSPC', 'write', path);
      const n = nodeFs.writeSync(fd, buffer, offset, Math.min(length, faults.spaceLeft));
      faults.spaceLeft -= n;
      return n;
    }) as FileSystem['writeSync'],
    closeSync: (fd: number) => {
      tempFds.delete(fd);
      nodeFs.closeSync(fd);
    },
    renameSync: (from: nodeFs.PathLike, to: nodeFs.PathLike) => {
      const fault = faults.renameError;
      if (fault?.target.test(String(to))) {
        throw errno(fault.code, 'rename', String(from));
      }
      nodeFs.renameSync(from, to);
    },
  };
  return { fs, faults };
}

let lastDir = '';
const storeCases: StoreCase[] = [
  {
    label: 'fileStore',
    make: () => fileStore((lastDir = tempDir())),
    location: (name, index) => join(lastDir, `${name}.ckpt${index === 0 ? '' : `.${index}`}`),
    movedAside: (name, tag, count) =>
      Array.from({ length: count }, (_, i) =>
        join(lastDir, `${name}.ckpt${i === 0 ? '' : `.${i}`}.${tag}`),
      ),
  },
  {
    label: 'memoryStore',
    make: () => memoryStore(),
    location: (name, index) => `memory:${name}#${index}`,
    movedAside: (name, tag, count) => (count === 0 ? [] : [`memory:${name}.${tag}`]),
  },
];

describeStoreContract(storeCases);

describe('fileStore through a Checkpoint', () => {
  it('creates <dir>/<name>.ckpt with mode 0600 in a new folder with mode 0700', () => {
    const base = tempDir();
    const dir = join(base, 'nested', 'ckpts');
    const chp = checkpoint<{ n: number }>('job', dir);
    expect(chp.location).toBe(join(dir, 'job.ckpt'));
    chp.restore({ n: 1 });
    chp.save();
    expect(listing(dir)).toEqual(['job.ckpt', 'job.lock']);
    expect(mode(join(dir, 'job.ckpt'))).toBe(0o600);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'job.lock'))).toBe(0o600);
    chp.close();
    expect(listing(dir)).toEqual(['job.ckpt']);
    expect(restoreFresh('job', dir, { n: 0 })).toEqual({ n: 1 });
  });

  it('keep=2 (the default) leaves .ckpt and .ckpt.1 holding the previous save, byte for byte', () => {
    const dir = tempDir();
    const chp = checkpoint<{ n: number }>('job', dir);
    const s = chp.restore({ n: 1 });
    chp.save();
    const first = nodeFs.readFileSync(join(dir, 'job.ckpt'));
    s.n = 2;
    chp.save();
    const second = nodeFs.readFileSync(join(dir, 'job.ckpt'));
    expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
    expect(nodeFs.readFileSync(join(dir, 'job.ckpt.1')).equals(first)).toBe(true);
    s.n = 3;
    chp.save();
    expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
    expect(nodeFs.readFileSync(join(dir, 'job.ckpt.1')).equals(second)).toBe(true);
    expect(mode(join(dir, 'job.ckpt.1'))).toBe(0o600);
    chp.close();
    expect(restoreFresh('job', dir, { n: 0 })).toEqual({ n: 3 });
  });

  it('keep=3 keeps three generations, each the exact bytes of its save', () => {
    const dir = tempDir();
    const chp = checkpoint<{ n: number }>('job', dir, { keep: 3 });
    const s = chp.restore({ n: 0 });
    const saved: Buffer[] = [];
    for (let n = 1; n <= 4; n++) {
      s.n = n;
      chp.save();
      saved.unshift(nodeFs.readFileSync(join(dir, 'job.ckpt')));
    }
    expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.ckpt.2', 'job.lock']);
    const files = ['job.ckpt', 'job.ckpt.1', 'job.ckpt.2'];
    files.forEach((file, i) => {
      expect(nodeFs.readFileSync(join(dir, file)).equals(saved[i]!)).toBe(true);
    });
  });

  /** A checkpoint of `mib` MiB of patterned bytes, stored raw. */
  function bigCheckpoint(dir: string, mib: number) {
    const chp = new Checkpoint<{ data: Uint8Array }>({
      name: 'job',
      dir,
      compression: 'none',
      log: false,
      signals: false,
    });
    open.push(chp as unknown as Checkpoint<Record<string, unknown>>);
    const data = new Uint8Array(mib * 1024 ** 2);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i / 4096) % 251;
    chp.restore({ data });
    return { chp, data };
  }

  it('a large save asks for its pages to be flushed every 8 MiB while it writes them, and once before the checksum (#17.1)', () => {
    const dir = tempDir();
    const { chp, data } = bigCheckpoint(dir, 40);
    const events: string[] = [];
    const { writeSync } = nodeFs;
    nodeFs.writeSync = ((fd: number, buffer: Uint8Array, offset?: number, length?: number) => {
      const n = length ?? buffer.byteLength;
      events.push(n > 64 * 1024 ? `write ${n / 1024 ** 2} MiB` : 'write');
      return (writeSync as (...a: unknown[]) => number)(fd, buffer, offset, length);
    }) as typeof nodeFs.writeSync;
    const paths = new Set<string>();
    const before = setWritebackHandOff((path, final) => {
      paths.add(path);
      events.push(final ? 'flush, final' : 'flush');
      return true;
    });
    try {
      chp.save();
    } finally {
      nodeFs.writeSync = writeSync;
      setWritebackHandOff(before);
    }
    const slice = ['write 8 MiB', 'flush'];
    expect(events.filter((e, i) => e !== 'write' || i === 0)).toEqual([
      'write',
      ...slice,
      ...slice,
      ...slice,
      ...slice,
      ...slice,
      'flush, final',
    ]);
    // The trailer (checksum) after the final flush; every flush of the temp file.
    expect(events.at(-1)).toBe('write');
    expect([...paths].map((path) => path.replace(/\.tmp-[^/]*$/, '.tmp'))).toEqual([
      join(dir, 'job.ckpt.tmp'),
    ]);
    chp.close();
    const back = restoreFresh('job', dir, { data: new Uint8Array(0) });
    expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true);
  });

  it('a synchronous loop of large saves keeps at most 2 descriptors of flushes open (#17.1)', () => {
    const dir = tempDir();
    const { chp } = bigCheckpoint(dir, 24);
    const ours = () =>
      nodeFs
        .readdirSync('/proc/self/fd')
        .map((fd) => {
          try {
            return nodeFs.readlinkSync(`/proc/self/fd/${fd}`);
          } catch {
            return ''; // closed meanwhile (readdir's own descriptor)
          }
        })
        .filter((target) => target.startsWith(join(dir, 'job.ckpt')));
    const control = Background.get().control;
    let most: string[] = [];
    let inFlight = 0;
    for (let i = 0; i < 12; i++) {
      chp.save();
      const open = ours();
      if (open.length > most.length) most = open;
      inFlight = Math.max(inFlight, Atomics.load(control, Control.WRITEBACKS));
    }
    // Flushes (at most 2 in flight) and the generations a save holds until libuv's pool
    // closes them (keep = 2, of this save and, on a loaded machine, the one before): it grew
    // with the saves before, to 12 (one per save) and 48 (one per flush).
    expect(inFlight).toBeLessThanOrEqual(2);
    expect(most.length).toBeLessThanOrEqual(6);
  });

  it('the flushes handed to the background thread open the temp file and all end (#17.1)', async () => {
    const dir = tempDir();
    const { chp } = bigCheckpoint(dir, 24);
    const control = Background.get().control;
    const handed: boolean[] = [];
    const hand = setWritebackHandOff(undefined)!;
    setWritebackHandOff((path, final) => {
      const before = Atomics.load(control, Control.WRITEBACKS);
      const taken = hand(path, final);
      handed.push(Atomics.load(control, Control.WRITEBACKS) > before);
      return taken;
    });
    try {
      chp.save();
    } finally {
      setWritebackHandOff(hand);
    }
    // Three slices of 8 MiB and the final one; at least the first was given to the thread.
    expect(handed).toHaveLength(4);
    expect(handed[0]).toBe(true);
    const deadline = Date.now() + 10_000;
    while (Atomics.load(control, Control.WRITEBACKS) !== 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(Atomics.load(control, Control.WRITEBACKS)).toBe(0);
  });

  it('a flush of a FIFO planted at the path returns at once, never waiting for a writer (#17.1)', () => {
    const dir = tempDir();
    const fifo = join(dir, 'job.ckpt.tmp-1-00000000');
    execFileSync('mkfifo', [fifo]);
    const script = `
      import { startWriteback } from ${distModule('store/writeback.js')};
      startWriteback(${JSON.stringify(fifo)}, () => console.log('closed'));
      console.log('returned');
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(run.signal).toBe(null);
    expect(run.stdout).toBe('returned\nclosed\n');
  });

  it('a file of any size asks for at most 16 flushes while written (#17.1)', () => {
    let flushes = 0;
    const before = setWritebackHandOff(() => {
      flushes++;
      return true;
    });
    try {
      for (const [total, slice, expected] of [
        [4 * 1024 ** 2, 8 * 1024 ** 2, 0],
        [40 * 1024 ** 2, 8 * 1024 ** 2, 5],
        [10 * 1024 ** 3, 640 * 1024 ** 2, 16],
        [64 * 1024 ** 3, 1024 ** 3, 16],
      ] as const) {
        flushes = 0;
        const pace = writebackPace('/nowhere', [{ byteLength: total } as Uint8Array], 1024 ** 3);
        expect(pace.slice).toBe(slice);
        for (let left = total; left > 0; left -= pace.slice) pace.wrote(Math.min(left, pace.slice));
        expect(flushes).toBe(expected);
      }
    } finally {
      setWritebackHandOff(before);
    }
  });

  it('a Checkpoint opened with a lower keep deletes the extra generations on its first save', () => {
    const dir = tempDir();
    const three = checkpoint<{ n: number }>('job', dir, { keep: 3 });
    const s = three.restore({ n: 0 });
    for (let n = 1; n <= 3; n++) {
      s.n = n;
      three.save();
    }
    const latest = nodeFs.readFileSync(join(dir, 'job.ckpt'));
    three.close();
    const two = checkpoint<{ n: number }>('job', dir, { keep: 2 });
    expect(two.restore({ n: 0 })).toEqual({ n: 3 });
    expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.ckpt.2', 'job.lock']);
    two.save({ n: 4 });
    expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
    expect(nodeFs.readFileSync(join(dir, 'job.ckpt.1')).equals(latest)).toBe(true);
    two.close();
    const one = checkpoint<{ n: number }>('job', dir, { keep: 1 });
    one.save({ n: 5 });
    expect(listing(dir)).toEqual(['job.ckpt', 'job.lock']);
    one.close();
    expect(restoreFresh('job', dir, { n: 0 })).toEqual({ n: 5 });
  });

  /** Opens "job" with a faulty fs and saves {v: 1} then {v: 2}; returns what a fault test needs. */
  function savedTwice() {
    const dir = tempDir();
    const { fs, faults } = faultyFs();
    const chp = checkpoint<{ v: number; text: string }>('job', dir, {
      store: fileStore(dir, { fs }),
    });
    const s = chp.restore({ v: 0, text: 'x'.repeat(2000) });
    s.v = 1;
    chp.save();
    const previous = nodeFs.readFileSync(join(dir, 'job.ckpt'));
    s.v = 2;
    chp.save();
    const latest = nodeFs.readFileSync(join(dir, 'job.ckpt'));
    return { dir, faults, chp, s, previous, latest, file: join(dir, 'job.ckpt') };
  }

  /** The StoreError `fn` throws, checked to carry an errno error of `code` as its cause. */
  function storeErrorOf(
    fn: () => void,
    code: string,
  ): StoreError & { cause: NodeJS.ErrnoException } {
    const caught = thrownBy(fn);
    expect(caught).toBeInstanceOf(StoreError);
    const err = caught as StoreError & { cause: NodeJS.ErrnoException };
    expect(err.code).toBe('CHECKPOINT_STORE');
    expect(err.name).toBe('StoreError');
    expect(err.cause.code).toBe(code);
    return err;
  }

  function expectStoreError(fn: () => void, file: string, code: string, syscall: string): void {
    const err = storeErrorOf(fn, code);
    expect(err.cause.syscall).toBe(syscall);
    expect(err.message).toBe(`Cannot save checkpoint "job" at ${file}: ${err.cause.message}`);
  }

  // Negative: that many bytes short of the whole file.
  it.each([0, 1, 19, 300, -1])(
    'ENOSPC after %i bytes of a save: StoreError, temp file removed, previous checkpoint intact',
    (bytes) => {
      const { dir, faults, chp, s, previous, latest, file } = savedTwice();
      const limit = bytes >= 0 ? bytes : latest.byteLength + bytes;
      expect(limit).toBeLessThan(latest.byteLength);
      faults.spaceLeft = limit;
      s.v = 3;
      expect(() => chp.save()).toThrow(StoreError);
      faults.spaceLeft = limit;
      s.v = 4;
      expectStoreError(() => chp.save(), file, 'ENOSPC', 'write');
      expect(faults.opened).toHaveLength(4);
      for (const temp of faults.opened) expect(nodeFs.existsSync(temp)).toBe(false);
      expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
      expect(nodeFs.readFileSync(file).equals(latest)).toBe(true);
      expect(nodeFs.readFileSync(join(dir, 'job.ckpt.1')).equals(previous)).toBe(true);
      chp.close();
      expect(restoreFresh('job', dir, { v: 0, text: '' })).toEqual({
        v: 2,
        text: 'x'.repeat(2000),
      });
    },
  );

  it('EROFS when opening the temp file: StoreError, nothing written, previous checkpoint intact', () => {
    const { dir, faults, chp, s, previous, latest, file } = savedTwice();
    faults.openError = 'EROFS';
    s.v = 3;
    expectStoreError(() => chp.save(), file, 'EROFS', 'open');
    expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
    expect(nodeFs.readFileSync(file).equals(latest)).toBe(true);
    expect(nodeFs.readFileSync(join(dir, 'job.ckpt.1')).equals(previous)).toBe(true);
    chp.close();
    expect(restoreFresh('job', dir, { v: 0, text: '' })).toEqual({ v: 2, text: 'x'.repeat(2000) });
  });

  it('EACCES when renaming the temp file over the latest: StoreError, temp removed, every generation intact', () => {
    const { dir, faults, chp, s, previous, latest, file } = savedTwice();
    faults.renameError = { code: 'EACCES', target: /job\.ckpt$/ };
    s.v = 3;
    expectStoreError(() => chp.save(), file, 'EACCES', 'rename');
    expect(faults.opened).toHaveLength(3);
    expect(nodeFs.existsSync(faults.opened[2]!)).toBe(false);
    expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
    expect(nodeFs.readFileSync(file).equals(latest)).toBe(true);
    expect(nodeFs.readFileSync(join(dir, 'job.ckpt.1')).equals(previous)).toBe(true);
    chp.close();
    expect(restoreFresh('job', dir, { v: 0, text: '' })).toEqual({ v: 2, text: 'x'.repeat(2000) });
  });

  it('EMFILE flushing the folder after the rename: StoreError saying the new file is in place, which restore() gets', () => {
    const { dir, faults, chp, s, latest, file } = savedTwice();
    faults.folderError = { code: 'EMFILE', folder: dir };
    s.v = 3;
    const err = storeErrorOf(() => chp.save(), 'EMFILE');
    expect(err.message).toBe(
      `Checkpoint "job" was saved to ${file}, but its folder could not be flushed to disk (${err.cause.message}): the new save is in place and restore() loads it, but a power loss now could undo it`,
    );
    expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
    expect(nodeFs.readFileSync(join(dir, 'job.ckpt.1')).equals(latest)).toBe(true);
    faults.folderError = undefined;
    s.v = 4;
    chp.save();
    chp.close();
    expect(restoreFresh('job', dir, { v: 0, text: '' })).toEqual({ v: 4, text: 'x'.repeat(2000) });
  });

  it('EIO shifting the previous latest to .1 after the rename: StoreError saying the new file is in place and durable', () => {
    const { dir, faults, chp, s, file } = savedTwice();
    faults.renameError = { code: 'EIO', target: /job\.ckpt\.1$/ };
    s.v = 3;
    const err = storeErrorOf(() => chp.save(), 'EIO');
    expect(err.message).toBe(
      `Checkpoint "job" was saved to ${file}, but the older generations could not be shifted (${err.cause.message}): the new save is in place, durable, and what restore() loads`,
    );
    faults.renameError = undefined;
    s.v = 4;
    chp.save();
    expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
    chp.close();
    expect(restoreFresh('job', dir, { v: 0, text: '' })).toEqual({ v: 4, text: 'x'.repeat(2000) });
  });

  it('a save whose folder flush failed is what the next restore() loads', () => {
    const { dir, faults, chp, s } = savedTwice();
    faults.folderError = { code: 'EIO', folder: dir };
    s.v = 3;
    expect(() => chp.save()).toThrow(StoreError);
    chp.close();
    expect(restoreFresh('job', dir, { v: 0, text: '' })).toEqual({ v: 3, text: 'x'.repeat(2000) });
  });

  it.each([
    [
      'ENOSPC',
      (f: Faults): void => {
        f.spaceLeft = 10;
      },
    ],
    [
      'EROFS',
      (f: Faults): void => {
        f.openError = 'EROFS';
      },
    ],
    [
      'EACCES',
      (f: Faults): void => {
        f.renameError = { code: 'EACCES', target: /job\.ckpt$/ };
      },
    ],
  ] as const)(
    'after a failed save (%s) the same Checkpoint saves again once the fault is gone',
    (_code, inject) => {
      const { dir, faults, chp, s } = savedTwice();
      inject(faults);
      s.v = 3;
      expect(() => chp.save()).toThrow(StoreError);
      faults.spaceLeft = Number.POSITIVE_INFINITY;
      faults.openError = undefined;
      faults.renameError = undefined;
      for (const v of [4, 5, 6]) {
        s.v = v;
        chp.save();
        expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
      }
      expect(chp.info?.saves).toBe(5);
      chp.close();
      expect(restoreFresh('job', dir, { v: 0, text: '' })).toEqual({
        v: 6,
        text: 'x'.repeat(2000),
      });
    },
  );

  // Regression: rotate() used to leave its staged hard link `<file>.1.tmp-<pid>` behind when
  // renaming it failed, and every later save in that process then failed with EEXIST.
  it('EACCES on every rename: StoreError, no staged link left behind, and the next save succeeds', () => {
    const { dir, faults, chp, s, latest, file } = savedTwice();
    faults.renameError = { code: 'EACCES', target: /./ };
    s.v = 3;
    expectStoreError(() => chp.save(), file, 'EACCES', 'rename');
    expect(nodeFs.readFileSync(file).equals(latest)).toBe(true);
    expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
    faults.renameError = undefined;
    s.v = 4;
    chp.save();
    chp.close();
    expect(restoreFresh('job', dir, { v: 0, text: '' })).toEqual({ v: 4, text: 'x'.repeat(2000) });
  });

  // Regression, found by test/crash/kill.test.ts: a kill between the rotation and the final
  // rename leaves `.ckpt.1` as a hard link of `.ckpt`; rename() of the staged link onto it is
  // then a no-op, which used to leave the staged link behind and fail every save after the next.
  it('saves keep working when .ckpt.1 is a hard link of .ckpt (a crash before the final rename)', () => {
    const dir = tempDir();
    const first = checkpoint<{ v: number }>('job', dir);
    first.restore({ v: 1 });
    first.save();
    first.close();
    nodeFs.linkSync(join(dir, 'job.ckpt'), join(dir, 'job.ckpt.1'));
    const chp = checkpoint<{ v: number }>('job', dir);
    const s = chp.restore({ v: 0 });
    for (let v = 2; v <= 5; v++) {
      s.v = v;
      chp.save();
      expect(listing(dir)).toEqual(['job.ckpt', 'job.ckpt.1', 'job.lock']);
    }
    const older = join(dir, 'job.ckpt.1');
    expect(unpackCheckpoint(nodeFs.readFileSync(older), older).envelope.state).toEqual({ v: 4 });
    chp.close();
    expect(restoreFresh('job', dir, { v: 0 })).toEqual({ v: 5 });
  });

  it('removes temp files of dead writers of that name when a Checkpoint opens, and only those', () => {
    const dir = tempDir();
    const deadPid = exitedPid();
    expect(deadPid).toBeGreaterThan(0);
    const leftovers = [
      `job.ckpt.tmp-${deadPid}-0a1b2c3d`,
      `job.ckpt.1.tmp-${deadPid}`,
      `job.ckpt.tmp-${process.pid}-ffff0000`,
    ];
    const kept = [
      'job.ckpt.tmp-1-0a1b2c3d', // pid 1 is alive: a save in progress
      `other.ckpt.tmp-${deadPid}-0a1b2c3d`, // another checkpoint's business
      'job.ckpt',
      'job.ckpt.expired-20240101T000000000Z',
    ];
    for (const name of [...leftovers, ...kept]) nodeFs.writeFileSync(join(dir, name), 'partial');
    const chp = checkpoint<{ n: number }>('job', dir);
    expect(listing(dir)).toEqual([...kept, 'job.lock'].sort());
    chp.close();
  });

  it('generations() lists the latest and numbered generations only, newest first', () => {
    const dir = tempDir();
    const names = [
      'job.ckpt.10',
      'job.ckpt.2',
      'job.ckpt',
      'job.ckpt.1',
      'job.ckpt.01',
      'job.ckpt.0',
      'job.ckpt.1.expired-x',
      'job.ckpt.expired-x',
      'job.ckpt.tmp-12-ab',
      'job.ckpt.1.tmp-12',
      'job.lock',
      'job.1.ckpt',
      'jobs.ckpt.1',
      'other.ckpt',
    ];
    for (const name of names) nodeFs.writeFileSync(join(dir, name), name);
    const store = fileStore(dir);
    expect(store.generations('job')).toEqual([
      { index: 0, location: join(dir, 'job.ckpt') },
      { index: 1, location: join(dir, 'job.ckpt.1') },
      { index: 2, location: join(dir, 'job.ckpt.2') },
      { index: 10, location: join(dir, 'job.ckpt.10') },
    ]);
    expect(store.generations('job').map((g) => asText(store.read('job', g)))).toEqual([
      'job.ckpt',
      'job.ckpt.1',
      'job.ckpt.2',
      'job.ckpt.10',
    ]);
    expect(fileStore(join(dir, 'missing')).generations('job')).toEqual([]);
  });

  it('moveAside renames every generation with the tag and keeps their bytes; saves never touch them', () => {
    const dir = tempDir();
    const store = fileStore(dir);
    store.write('job', [text('one')], 2);
    store.write('job', [text('two')], 2);
    expect(store.moveAside('job', 'expired-T1')).toEqual([
      join(dir, 'job.ckpt.expired-T1'),
      join(dir, 'job.ckpt.1.expired-T1'),
    ]);
    store.write('job', [text('three')], 2);
    store.write('job', [text('four')], 2);
    store.write('job', [text('five')], 2);
    expect(listing(dir)).toEqual([
      'job.ckpt',
      'job.ckpt.1',
      'job.ckpt.1.expired-T1',
      'job.ckpt.expired-T1',
    ]);
    expect(nodeFs.readFileSync(join(dir, 'job.ckpt.expired-T1'), 'utf8')).toBe('two');
    expect(nodeFs.readFileSync(join(dir, 'job.ckpt.1.expired-T1'), 'utf8')).toBe('one');
    store.remove('job');
    expect(listing(dir)).toEqual(['job.ckpt.1.expired-T1', 'job.ckpt.expired-T1']);
  });

  it('remove deletes the generations but leaves moved-aside files, the lock and other names', () => {
    const dir = tempDir();
    const chp = checkpoint<{ n: number }>('job', dir, { keep: 3 });
    const s = chp.restore({ n: 0 });
    for (let n = 1; n <= 3; n++) {
      s.n = n;
      chp.save();
    }
    nodeFs.writeFileSync(join(dir, 'job.ckpt.expired-x'), 'old');
    nodeFs.writeFileSync(join(dir, 'other.ckpt'), 'other');
    chp.clear();
    expect(listing(dir)).toEqual(['job.ckpt.expired-x', 'job.lock', 'other.ckpt']);
    expect(chp.info).toBe(undefined);
    chp.close();
    const again = checkpoint<{ n: number }>('job', dir);
    expect(again.restore({ n: 0 })).toEqual({ n: 0 });
    expect(again.restored).toBe(false);
  });

  it('read, remove and moveAside failures are StoreErrors naming the checkpoint and keeping the cause', () => {
    const dir = tempDir();
    const failing = new Set<string>();
    const fs: FileSystem = {
      ...nodeFs,
      unlinkSync: (path: nodeFs.PathLike) => {
        if (failing.has('unlink')) throw errno('EACCES', 'unlink', String(path));
        nodeFs.unlinkSync(path);
      },
      renameSync: (from: nodeFs.PathLike, to: nodeFs.PathLike) => {
        if (failing.has('rename')) throw errno('EROFS', 'rename', String(from));
        nodeFs.renameSync(from, to);
      },
    };
    const store = fileStore(dir, { fs });
    const file = join(dir, 'job.ckpt');
    const missing = { index: 3, location: join(dir, 'job.ckpt.3') };
    const cases: [() => unknown, string, string][] = [
      [
        () => store.read('job', missing),
        'ENOENT',
        `Cannot read checkpoint "job" at ${missing.location}: ENOENT: no such file or directory, open '${missing.location}'`,
      ],
      [
        () => store.remove('job'),
        'EACCES',
        `Cannot delete checkpoint "job" at ${file}: EACCES: permission denied, unlink '${file}'`,
      ],
      [
        () => store.moveAside('job', 'tag'),
        'EROFS',
        `Cannot move aside checkpoint "job" at ${file}: EROFS: read-only file system, rename '${file}'`,
      ],
    ];
    store.write('job', [text('one')], 2);
    failing.add('unlink');
    failing.add('rename');
    for (const [fn, code, message] of cases) {
      expect(fn).toThrow(StoreError);
      const err = thrownBy(fn) as StoreError;
      expect(err.code).toBe('CHECKPOINT_STORE');
      expect((err.cause as NodeJS.ErrnoException).code).toBe(code);
      expect(err.message).toBe(message);
    }
    expect(listing(dir)).toEqual(['job.ckpt']);
    expect(nodeFs.readFileSync(file, 'utf8')).toBe('one');
  });

  it.each([
    ['../evil', '_._evil-'],
    ['/etc/passwd', '_etc_passwd-'],
    ['a\u0000b', 'a_b-'],
    ['..', '_.-'],
    ['dir/../../x', 'dir_.._.._x-'],
  ])('the unsafe name %j is stored inside the folder as %s…, never outside', (name, prefix) => {
    const base = tempDir();
    const dir = join(base, 'store');
    nodeFs.mkdirSync(dir);
    nodeFs.writeFileSync(join(base, 'sentinel'), 'untouched');
    const chp = checkpoint<{ secret: string }>(name, dir);
    expect(dirname(chp.location)).toBe(dir);
    chp.restore({ secret: 'x' });
    chp.save();
    chp.save();
    const entries = listing(dir);
    expect(entries).toHaveLength(3);
    const safe = entries.find((e) => e.endsWith('.lock'))!.slice(0, -'.lock'.length);
    expect(safe).toMatch(new RegExp(`^${prefix.replace(/[.]/g, '\\.')}[0-9a-f]{16}$`));
    expect(entries).toEqual([`${safe}.ckpt`, `${safe}.ckpt.1`, `${safe}.lock`]);
    expect(listing(base)).toEqual(['sentinel', 'store']);
    expect(nodeFs.readFileSync(join(base, 'sentinel'), 'utf8')).toBe('untouched');
    expect(nodeFs.existsSync('/etc/passwd.ckpt')).toBe(false);
    chp.close();
    expect(restoreFresh(name, dir, { secret: '' })).toEqual({ secret: 'x' });
    // The store used on its own maps names the same way.
    const store = fileStore(dir);
    expect(store.locate(name)).toBe(join(dir, `${safe}.ckpt`));
    store.remove(name);
    expect(listing(dir)).toEqual([]);
  });
});

describe('special files at checkpoint names (#11.8)', () => {
  const SPECIAL = fileURLToPath(new URL('./fixtures/lock/special.mjs', import.meta.url));
  /** Generous: each case ends within a couple of seconds; a hang is killed here. */
  const CHILD_TIMEOUT_MS = 15_000;

  interface Outcome {
    ok: boolean;
    lockIsFile?: boolean;
    value?: unknown;
    error?: { name: string; code: string; message: string };
    maxRssMb: number;
  }

  /** Runs test/fixtures/lock/special.mjs in a child process; fails if it hangs. */
  function runChild(dir: string, action: 'open' | 'restore' | 'once'): Outcome {
    const run = spawnSync(process.execPath, [SPECIAL, dir, action], {
      encoding: 'utf8',
      timeout: CHILD_TIMEOUT_MS,
    });
    expect({ signal: run.signal, status: run.status, stderr: run.stderr }).toEqual({
      signal: null,
      status: 0,
      stderr: '',
    });
    return JSON.parse(run.stdout) as Outcome;
  }

  /** A checkpoint `job` saved in `dir` holding `{ saved: n }`, then closed. */
  function saved(dir: string, n: number): void {
    const chp = checkpoint<{ saved: number }>('job', dir);
    chp.restore({ saved: n });
    chp.save();
    chp.close();
  }

  it('a FIFO at <name>.lock is garbage: taken over at once, never read (no hang)', () => {
    const dir = tempDir();
    execFileSync('mkfifo', [join(dir, 'job.lock')]);
    const out = runChild(dir, 'open');
    expect(out).toMatchObject({ ok: true, lockIsFile: true });
    expect(listing(dir)).toEqual([]);
  });

  it('a symlink from <name>.lock to /dev/zero is garbage: replaced, never followed, memory stays small', () => {
    const dir = tempDir();
    nodeFs.symlinkSync('/dev/zero', join(dir, 'job.lock'));
    const out = runChild(dir, 'open');
    expect(out).toMatchObject({ ok: true, lockIsFile: true });
    expect(out.maxRssMb).toBeLessThan(300); // 0.1.0 grew to 14.8 GB reading /dev/zero
    expect(listing(dir)).toEqual([]);
  });

  it('a FIFO at <name>.ckpt: restore() fails with CorruptCheckpointError saying so (no hang)', () => {
    const dir = tempDir();
    execFileSync('mkfifo', [join(dir, 'job.ckpt')]);
    const out = runChild(dir, 'restore');
    const where = join(dir, 'job.ckpt');
    expect(out.error).toEqual({
      name: 'CorruptCheckpointError',
      code: 'CHECKPOINT_CORRUPT',
      message: `Checkpoint file ${where} is a FIFO, not a checkpoint file: refused; no valid older generation of "job" (1 checked)`,
    });
  });

  it('a FIFO at <name>.ckpt with a valid older generation: restore() falls back to it', () => {
    const dir = tempDir();
    saved(dir, 1);
    saved(dir, 2);
    nodeFs.rmSync(join(dir, 'job.ckpt'));
    execFileSync('mkfifo', [join(dir, 'job.ckpt')]);
    expect(runChild(dir, 'restore')).toMatchObject({ ok: true, value: { saved: 1 } });
  });

  it('a symlink from <name>.ckpt to /dev/zero: restore() fails with CorruptCheckpointError, memory stays small', () => {
    const dir = tempDir();
    nodeFs.symlinkSync('/dev/zero', join(dir, 'job.ckpt'));
    const out = runChild(dir, 'restore');
    const where = join(dir, 'job.ckpt');
    expect(out.error).toEqual({
      name: 'CorruptCheckpointError',
      code: 'CHECKPOINT_CORRUPT',
      message: `Checkpoint file ${where} is a symbolic link, not a checkpoint file: refused; no valid older generation of "job" (1 checked)`,
    });
    expect(out.maxRssMb).toBeLessThan(300);
  });

  it('resume list and rm with FIFOs at <name>.ckpt and <name>.lock: they finish, saying so', () => {
    const dir = tempDir();
    execFileSync('mkfifo', [join(dir, 'job.ckpt')]);
    execFileSync('mkfifo', [join(dir, 'job.lock')]);
    const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
    const resume = (...args: string[]) =>
      spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: CHILD_TIMEOUT_MS });
    const list = resume('list', dir);
    expect({ signal: list.signal, status: list.status }).toEqual({ signal: null, status: 0 });
    expect(list.stdout).toContain(
      `Checkpoint file ${join(dir, 'job.ckpt')} is a FIFO, not a checkpoint file: refused`,
    );
    const rm = resume('rm', 'job', '--dir', dir, '--yes');
    expect({ signal: rm.signal, status: rm.status }).toEqual({ signal: null, status: 0 });
    expect(listing(dir)).toEqual([]);
  });

  it('a FIFO at a journal: restore() works, once() fails with CorruptCheckpointError (no hang)', () => {
    const dir = tempDir();
    const journal = join(dir, 'job.ckpt.journal-5');
    execFileSync('mkfifo', [journal]);
    const out = runChild(dir, 'once');
    expect(out.error).toEqual({
      name: 'CorruptCheckpointError',
      code: 'CHECKPOINT_CORRUPT',
      message: `Checkpoint file ${journal} is a FIFO, not a checkpoint file: refused`,
    });
  });
});

describe('the constructor on a folder it cannot write: StoreError keeping the cause (#11.7)', () => {
  const isRoot = process.getuid?.() === 0;
  const mounted: string[] = [];

  // Mounts come off before the folders are removed (this hook runs before the file's).
  afterEach(() => {
    for (const dir of mounted.splice(0).reverse()) execFileSync('umount', [dir]);
  });

  function construct(dir: string, store?: CheckpointStore): unknown {
    return thrownBy(
      () =>
        new Checkpoint({
          name: 'job',
          dir,
          log: false,
          signals: false,
          ...(store === undefined ? {} : { store }),
        }),
    );
  }

  function expectStoreError(err: unknown, code: string, message: RegExp): void {
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('CHECKPOINT_STORE');
    expect(((err as StoreError).cause as NodeJS.ErrnoException).code).toBe(code);
    expect((err as StoreError).message).toMatch(message);
  }

  it.runIf(isRoot)('read-only (a read-only bind mount): EROFS', () => {
    const dir = tempDir();
    execFileSync('mount', ['--bind', dir, dir]);
    mounted.push(dir);
    execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
    const lock = join(dir, 'job.lock');
    expectStoreError(
      construct(dir),
      'EROFS',
      new RegExp(
        `^Cannot lock checkpoint "job" at ${lock}: EROFS: read-only file system, open '${lock}\\.tmp-\\d+-[0-9a-f]{8}'$`,
      ),
    );
    expect(listing(dir)).toEqual([]);
  });

  it.runIf(isRoot)('full (a 64 KiB tmpfs filled up): ENOSPC, and nothing left behind', () => {
    const dir = tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir]);
    mounted.push(dir);
    nodeFs.writeFileSync(join(dir, 'fill'), Buffer.alloc(64 * 1024));
    expectStoreError(
      construct(dir),
      'ENOSPC',
      new RegExp(`^Cannot lock checkpoint "job" at ${join(dir, 'job.lock')}: ENOSPC: `),
    );
    expect(listing(dir)).toEqual(['fill']);
  });

  it('unwritable (EACCES creating the folder or the lock, from an injected fs)', () => {
    const base = tempDir();
    const dir = join(base, 'ckpts');
    const denied = (syscall: string, path: nodeFs.PathLike) =>
      errno('EACCES', syscall, String(path));
    const noMkdir = fileStore(dir, {
      fs: {
        ...nodeFs,
        mkdirSync: ((path: nodeFs.PathLike) => {
          throw denied('mkdir', path);
        }) as FileSystem['mkdirSync'],
      },
    });
    expectStoreError(
      construct(dir, noMkdir),
      'EACCES',
      new RegExp(
        `^Cannot lock checkpoint "job" at ${join(dir, 'job.lock')}: EACCES: permission denied, mkdir '${dir}'$`,
      ),
    );
    const noOpen = fileStore(base, {
      fs: {
        ...nodeFs,
        openSync: ((path: nodeFs.PathLike) => {
          throw denied('open', path);
        }) as FileSystem['openSync'],
      },
    });
    expectStoreError(
      construct(base, noOpen),
      'EACCES',
      new RegExp(
        `^Cannot lock checkpoint "job" at ${join(base, 'job.lock')}: EACCES: permission denied, open '`,
      ),
    );
    expect(listing(base)).toEqual([]);
  });
});
