/**
 * One writer per checkpoint: the lock file names its owner; another live process is refused
 * with CheckpointLockedError; the same process may open a name again; close() and exit
 * release; a lock left by a killed process (or garbage) is taken over; a lock from another
 * host is respected, since its owner cannot be checked from here.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import nodeFs, {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  Checkpoint,
  CheckpointError,
  CheckpointLockedError,
  type FileSystem,
  fileStore,
  StoreError,
} from '../dist/index.js';
import { backgroundFileStore } from '../dist/store/file.js';
import { cleanedAfterEach, exitedPid, thrownBy } from './helpers.js';

const HOLDER = fileURLToPath(new URL('./fixtures/lock/holder.mjs', import.meta.url));
const CHILD_TIMEOUT_MS = 10_000;

const { tempDir, children, open } = cleanedAfterEach('rs-lock-');

function openCheckpoint<T extends object>(dir: string, name = 'job'): Checkpoint<T> {
  const chp = new Checkpoint<T>({ name, dir, log: false, signals: false });
  open.push(chp);
  return chp;
}

interface LockRecord {
  pid: number;
  host: string;
  since: string;
  token: string;
}

const readLock = (dir: string, name = 'job'): LockRecord =>
  JSON.parse(readFileSync(join(dir, `${name}.lock`), 'utf8')) as LockRecord;

interface Holder {
  child: ChildProcess;
  pid: number;
  location: string;
  /** Sends one command line (`close`, `exit`). */
  send(command: string): void;
  /** Resolves when the child has printed `line`. */
  printed(line: string): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts test/fixtures/lock/holder.mjs and waits until it holds `name` in `dir`. */
async function startHolder(dir: string, name = 'job'): Promise<Holder> {
  const child = spawn(process.execPath, [HOLDER, dir, name], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  const waiters: { line: string; resolve: () => void }[] = [];
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    stdout += chunk;
    const lines = stdout.split('\n');
    for (const w of [...waiters]) {
      if (lines.includes(w.line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stderr: string;
  }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  const withTimeout = <R>(promise: Promise<R>, what: string): Promise<R> =>
    Promise.race([
      promise,
      new Promise<R>((_, reject) =>
        setTimeout(
          () => reject(new Error(`holder: no ${what} within ${CHILD_TIMEOUT_MS} ms; ${stderr}`)),
          CHILD_TIMEOUT_MS,
        ).unref(),
      ),
    ]);
  const ready = await withTimeout(
    new Promise<{ pid: number; location: string }>((resolve, reject) => {
      child.stdout!.on('data', () => {
        const first = stdout.split('\n')[0];
        if (stdout.includes('\n') && first !== undefined) resolve(JSON.parse(first));
      });
      void exited.then((e) => reject(new Error(`holder exited early: ${JSON.stringify(e)}`)));
    }),
    'ready line',
  );
  return {
    child,
    pid: ready.pid,
    location: ready.location,
    send: (command) => child.stdin!.write(`${command}\n`),
    printed: (line) =>
      withTimeout(
        new Promise<void>((resolve) => {
          if (stdout.split('\n').includes(line)) resolve();
          else waiters.push({ line, resolve });
        }),
        `"${line}" line`,
      ),
    exited: withTimeout(exited, 'exit'),
  };
}

describe('checkpoint lock', () => {
  it('another live process holding the checkpoint: CheckpointLockedError naming its pid and host', async () => {
    const dir = tempDir();
    const holder = await startHolder(dir);
    expect(holder.pid).toBe(holder.child.pid);
    expect(holder.location).toBe(join(dir, 'job.ckpt'));
    const lockBefore = readFileSync(join(dir, 'job.lock'), 'utf8');
    const record = readLock(dir);
    expect(record).toEqual({
      pid: holder.pid,
      host: hostname(),
      since: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      token: expect.stringMatching(/^[0-9a-f]{16}$/),
      start: expect.stringMatching(/^\d+$/), // process start time: tells a reused pid
    });

    const construct = () => new Checkpoint({ name: 'job', dir, log: false, signals: false });
    expect(construct).toThrow(CheckpointLockedError);
    const err = thrownBy(construct) as CheckpointLockedError;
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.name).toBe('CheckpointLockedError');
    expect(err.code).toBe('CHECKPOINT_LOCKED');
    expect(err.pid).toBe(holder.pid);
    expect(err.host).toBe(hostname());
    expect(err.message).toBe(
      `Checkpoint "job" is in use by process ${holder.pid} on ${hostname()} since ${record.since} (lock ${join(dir, 'job.lock')}). Stop that process, or delete the lock file if it is gone.`,
    );
    // Refusing touched nothing.
    expect(readFileSync(join(dir, 'job.lock'), 'utf8')).toBe(lockBefore);
    expect(readdirSync(dir).sort()).toEqual(['job.ckpt', 'job.lock']);

    // A normal exit releases it (exit hook), and the holder's save is there to restore.
    holder.send('exit');
    expect(await holder.exited).toEqual({ code: 0, signal: null, stderr: '' });
    expect(readdirSync(dir)).toEqual(['job.ckpt']);
    const chp = openCheckpoint<{ owner: string; n: number }>(dir);
    expect(chp.restore({ owner: 'parent', n: 0 })).toEqual({ owner: 'child', n: 42 });
    expect(readLock(dir).pid).toBe(process.pid);
  });

  it('close() in the holding process releases the lock while that process lives on', async () => {
    const dir = tempDir();
    const holder = await startHolder(dir);
    expect(() => openCheckpoint(dir)).toThrow(CheckpointLockedError);
    holder.send('close');
    await holder.printed('closed');
    expect(existsSync(join(dir, 'job.lock'))).toBe(false);
    expect(holder.child.exitCode).toBe(null);
    const chp = openCheckpoint<{ owner: string; n: number }>(dir);
    expect(readLock(dir).pid).toBe(process.pid);
    expect(chp.restore({ owner: 'parent', n: 0 })).toEqual({ owner: 'child', n: 42 });
    // The holder leaving now must not remove the lock it no longer owns.
    holder.send('exit');
    expect(await holder.exited).toEqual({ code: 0, signal: null, stderr: '' });
    expect(readLock(dir).pid).toBe(process.pid);
  });

  it('a lock left by a SIGKILLed process is taken over without error', async () => {
    const dir = tempDir();
    const holder = await startHolder(dir);
    holder.child.kill('SIGKILL');
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGKILL', stderr: '' });
    // The dead owner's lock is still there…
    expect(readLock(dir).pid).toBe(holder.pid);
    // …and is taken over.
    const chp = openCheckpoint<{ owner: string; n: number }>(dir);
    const lock = readLock(dir);
    expect({ pid: lock.pid, host: lock.host }).toEqual({ pid: process.pid, host: hostname() });
    expect(chp.restore({ owner: 'parent', n: 0 })).toEqual({ owner: 'child', n: 42 });
    expect(readdirSync(dir).sort()).toEqual(['job.ckpt', 'job.lock']);
    chp.close();
    expect(readdirSync(dir)).toEqual(['job.ckpt']);
  });

  it('a hand-written lock of a dead process on this host is taken over', () => {
    const dir = tempDir();
    const deadPid = exitedPid();
    writeFileSync(
      join(dir, 'job.lock'),
      JSON.stringify({
        pid: deadPid,
        host: hostname(),
        since: '2024-01-01T00:00:00.000Z',
        token: 'ab',
      }),
    );
    openCheckpoint(dir);
    expect(readLock(dir).pid).toBe(process.pid);
    expect(readLock(dir).token).not.toBe('ab');
  });

  it('a lock whose pid now belongs to another process (pid reuse) is taken over', () => {
    const dir = tempDir();
    // Pid 1 is alive, but it started long before this "owner" said it did.
    writeFileSync(
      join(dir, 'job.lock'),
      JSON.stringify({
        pid: 1,
        host: hostname(),
        since: '2024-01-01T00:00:00.000Z',
        token: 'cd',
        start: '999999999999',
      }),
    );
    openCheckpoint(dir);
    expect(readLock(dir).pid).toBe(process.pid);
  });

  it('a lock with our own pid that we do not hold (an earlier process with this pid) is taken over', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'job.lock'),
      JSON.stringify({
        pid: process.pid,
        host: hostname(),
        since: '2024-01-01T00:00:00.000Z',
        token: 'ef',
      }),
    );
    openCheckpoint(dir);
    expect(readLock(dir).token).not.toBe('ef');
  });

  it.each([
    ['empty', ''],
    ['not JSON', 'garbage{'],
    ['JSON without pid', '{"host":"h"}'],
  ])('an unreadable lock file (%s) is taken over after a short wait', (_label, content) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'job.lock'), content);
    openCheckpoint(dir);
    expect(readLock(dir).pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual(['job.lock']);
  });

  it('a lock of another live process on this host (pid 1) is respected', () => {
    const dir = tempDir();
    const since = '2024-05-06T07:08:09.000Z';
    writeFileSync(
      join(dir, 'job.lock'),
      JSON.stringify({ pid: 1, host: hostname(), since, token: 'cd' }),
    );
    const err = thrownBy(() => openCheckpoint(dir)) as CheckpointLockedError;
    expect(err).toBeInstanceOf(CheckpointLockedError);
    expect({ code: err.code, pid: err.pid, host: err.host }).toEqual({
      code: 'CHECKPOINT_LOCKED',
      pid: 1,
      host: hostname(),
    });
    expect(err.message).toMatch(
      new RegExp(`^Checkpoint "job" is in use by process 1 on ${hostname()} since ${since} `),
    );
  });

  it.each([
    ['a live pid', process.pid],
    ['a pid not alive here', 999_999],
  ])(
    'a lock from another host with %s is respected: CheckpointLockedError naming that host',
    (_label, pid) => {
      const dir = tempDir();
      const since = '2024-05-06T07:08:09.000Z';
      const content = JSON.stringify({ pid, host: 'other-host', since, token: 'ef' });
      writeFileSync(join(dir, 'job.lock'), content);
      const construct = () => openCheckpoint(dir);
      expect(construct).toThrow(CheckpointLockedError);
      const err = thrownBy(construct) as CheckpointLockedError;
      expect({ code: err.code, pid: err.pid, host: err.host }).toEqual({
        code: 'CHECKPOINT_LOCKED',
        pid,
        host: 'other-host',
      });
      expect(err.message).toBe(
        `Checkpoint "job" is in use by process ${pid} on other-host since ${since} (lock ${join(dir, 'job.lock')}). Stop that process, or delete the lock file if it is gone.`,
      );
      expect(readFileSync(join(dir, 'job.lock'), 'utf8')).toBe(content);
      expect(readdirSync(dir)).toEqual(['job.lock']);
    },
  );

  it('the same process may open a name twice: the second restores what the first saved, as its own object', () => {
    const dir = tempDir();
    type State = { n: number; list: number[]; nested: { tag: string } };
    const first = openCheckpoint<State>(dir);
    const a = first.restore({ n: 0, list: [], nested: { tag: 'initial' } });
    a.n = 5;
    a.list.push(1, 2, 3);
    a.nested.tag = 'saved';
    first.save();

    const second = openCheckpoint<State>(dir);
    const b = second.restore({ n: 0, list: [], nested: { tag: 'initial' } });
    expect(second.restored).toBe(true);
    expect(b).toEqual({ n: 5, list: [1, 2, 3], nested: { tag: 'saved' } });
    expect(b).not.toBe(a);
    expect(b.list).not.toBe(a.list);
    expect(b.nested).not.toBe(a.nested);
    b.n = 6;
    b.list.push(4);
    b.nested.tag = 'changed in b';
    expect(a).toEqual({ n: 5, list: [1, 2, 3], nested: { tag: 'saved' } });
    a.n = 7;
    expect(b.n).toBe(6);
    expect(readLock(dir).pid).toBe(process.pid);
  });

  it('the lock file is removed when the last instance of this process closes, and only then', () => {
    const dir = tempDir();
    const lock = join(dir, 'job.lock');
    const first = openCheckpoint(dir);
    const second = openCheckpoint(dir);
    const token = readLock(dir).token;
    first.close();
    first.close(); // idempotent: must not release the second instance's hold
    expect(existsSync(lock)).toBe(true);
    expect(readLock(dir).token).toBe(token);
    second.close();
    expect(existsSync(lock)).toBe(false);
    // Free again: a third opens and takes a new lock.
    openCheckpoint(dir);
    expect(readLock(dir).token).not.toBe(token);
  });

  it('different names in one folder have separate locks', async () => {
    const dir = tempDir();
    const holder = await startHolder(dir, 'a');
    expect(() => openCheckpoint(dir, 'a')).toThrow(CheckpointLockedError);
    openCheckpoint(dir, 'b');
    expect(readLock(dir, 'a').pid).toBe(holder.pid);
    expect(readLock(dir, 'b').pid).toBe(process.pid);
  });
});

describe('the folder deleted or replaced under a live owner (#11.3)', () => {
  it.each([
    ['deleted', (dir: string) => rmSync(dir, { recursive: true })],
    [
      'replaced',
      (dir: string) => {
        renameSync(dir, `${dir}.old`);
        mkdirSync(dir);
      },
    ],
  ])(
    '%s, nobody else there: the next save() takes the lock again, says so, and saves there',
    (_label, change) => {
      const dir = join(tempDir(), 'ckpts');
      const lines: string[] = [];
      const chp = new Checkpoint<{ n: number }>({
        name: 'job',
        dir,
        log: (line) => lines.push(line),
        signals: false,
      });
      open.push(chp);
      const state = chp.restore({ n: 1 });
      chp.save();
      const record = readLock(dir);
      change(dir);
      state.n = 2;
      chp.save();
      expect(readLock(dir)).toEqual(record);
      expect(readdirSync(dir).sort()).toEqual(['job.ckpt', 'job.lock']);
      expect(lines).toEqual([
        `resumable-state: the lock of "job" was gone (its folder deleted or replaced?); took it again, saves go on in ${join(dir, 'job.ckpt')}`,
      ]);
      chp.close();
      expect(readdirSync(dir)).toEqual(['job.ckpt']);
      const again = openCheckpoint<{ n: number }>(dir);
      expect(again.restore({ n: 0 })).toEqual({ n: 2 });
    },
  );

  it('deleted, then another process takes the checkpoint: save() and sync() refuse with CheckpointLockedError and never write into its folder', async () => {
    const dir = tempDir();
    const chp = new Checkpoint<{ owner: string; n: number }>({
      name: 'job',
      dir,
      log: false,
      signals: false,
      interval: 0,
    });
    open.push(chp);
    const state = chp.restore({ owner: 'parent', n: 1 });
    chp.save();
    rmSync(dir, { recursive: true });
    const holder = await startHolder(dir);
    const theirs = readFileSync(join(dir, 'job.ckpt'));
    const theirLock = readFileSync(join(dir, 'job.lock'), 'utf8');

    state.n = 2;
    const err = thrownBy(() => chp.save()) as CheckpointLockedError;
    expect(err).toBeInstanceOf(CheckpointLockedError);
    expect({ code: err.code, pid: err.pid, host: err.host }).toEqual({
      code: 'CHECKPOINT_LOCKED',
      pid: holder.pid,
      host: hostname(),
    });
    // A background save (interval 0: every sync() starts one) is refused the same way.
    const bySync = thrownBy(() => chp.sync()) as CheckpointLockedError;
    expect(bySync).toBeInstanceOf(CheckpointLockedError);
    expect(bySync.pid).toBe(holder.pid);
    await chp.flush();
    // Nor may it delete what is now theirs.
    expect(thrownBy(() => chp.clear())).toBeInstanceOf(CheckpointLockedError);
    expect(readFileSync(join(dir, 'job.ckpt'))).toEqual(theirs);
    expect(readFileSync(join(dir, 'job.lock'), 'utf8')).toBe(theirLock);
    expect(readdirSync(dir).sort()).toEqual(['job.ckpt', 'job.lock']);

    // Once the other process is gone, the lock is free: the next save takes it back.
    holder.send('exit');
    expect(await holder.exited).toEqual({ code: 0, signal: null, stderr: '' });
    chp.save();
    expect(readLock(dir).pid).toBe(process.pid);
    chp.close();
    const again = openCheckpoint<{ owner: string; n: number }>(dir);
    expect(again.restore({ owner: '', n: 0 })).toEqual({ owner: 'parent', n: 2 });
  });

  it("the background thread's store writes only while this process holds the lock", () => {
    const dir = tempDir();
    const lock = join(dir, 'job.lock');
    const store = backgroundFileStore(dir);
    const parts = [new TextEncoder().encode('bytes')];

    const gone = thrownBy(() => store.write('job', parts, 2)) as StoreError;
    expect(gone).toBeInstanceOf(StoreError);
    expect(gone.message).toBe(
      `The lock of checkpoint "job" (${lock}) is gone: was its folder deleted or replaced? This save is not written; the next one takes the lock again if it is free`,
    );

    const since = '2024-05-06T07:08:09.000Z';
    writeFileSync(lock, JSON.stringify({ pid: 1, host: hostname(), since, token: 'cd' }));
    const taken = thrownBy(() => store.write('job', parts, 2)) as CheckpointLockedError;
    expect(taken).toBeInstanceOf(CheckpointLockedError);
    expect({ pid: taken.pid, host: taken.host }).toEqual({ pid: 1, host: hostname() });
    expect(readdirSync(dir)).toEqual(['job.lock']);

    rmSync(lock);
    openCheckpoint(dir);
    store.write('job', parts, 2);
    expect(readdirSync(dir).sort()).toEqual(['job.ckpt', 'job.lock']);
  });
});

describe('where hard links are not supported (some network and FAT file systems)', () => {
  // link() fails with EPERM there: locks are created exclusively, then written, so a rival's
  // lock may be seen empty for a moment and garbage is taken over only once it is 2 s old.
  const noLinks = {
    ...nodeFs,
    linkSync: (from: nodeFs.PathLike) => {
      throw Object.assign(new Error(`EPERM: operation not permitted, link '${String(from)}'`), {
        code: 'EPERM',
      });
    },
  } as FileSystem;

  function openWithoutLinks(dir: string): Checkpoint {
    const chp = new Checkpoint({
      name: 'job',
      dir,
      store: fileStore(dir, { fs: noLinks }),
      log: false,
      signals: false,
    });
    open.push(chp);
    return chp;
  }

  it('takes a free lock by exclusive create, and releases it', () => {
    const dir = tempDir();
    const chp = openWithoutLinks(dir);
    expect(readLock(dir).pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual(['job.lock']);
    chp.close();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('garbage older than 2 s is taken over; fresh garbage only once it is 2 s old', () => {
    const dir = tempDir();
    const lock = join(dir, 'job.lock');
    writeFileSync(lock, '{"pid":');
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    openWithoutLinks(dir).close();
    expect(readdirSync(dir)).toEqual([]);

    writeFileSync(lock, '');
    const started = Date.now();
    openWithoutLinks(dir);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900); // a lower bound: never flaky
    expect(readLock(dir).pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual(['job.lock']);
  });
});
