/**
 * Restarts that just work (#14.3): which lease holders this machine can judge, the
 * `lockWait` option, and the file store waiting for a live holder to let go. The shared
 * stores' restarts and twin processes are in shared-stores.test.ts.
 */
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Checkpoint, CheckpointLockedError } from '../dist/index.js';
import { currentProcess, judgeProcess } from '../dist/process-identity.js';
import { cleanedAfterEach, exitedPid, thrownBy } from './helpers.js';

const HOLD = fileURLToPath(new URL('./fixtures/lease/hold-briefly.mjs', import.meta.url));
const { tempDir, children, open } = cleanedAfterEach('rs-lease-');

describe('judging a lease holder', () => {
  const me = currentProcess();

  it('records pid, host, and on Linux the boot id, pid namespace and start time', () => {
    expect(me).toEqual({
      pid: process.pid,
      host: hostname(),
      boot: expect.stringMatching(/^[0-9a-f-]{36}$/),
      pidns: expect.stringMatching(/^pid:\[\d+\]$/),
      start: expect.stringMatching(/^\d+$/),
    });
  });

  it('a running process of this pid space is alive', () => {
    expect(judgeProcess(me)).toBe('alive');
  });

  it('a process of this pid space that is gone is dead', () => {
    const gone = exitedPid();
    expect(judgeProcess({ ...me, pid: gone, start: undefined as unknown as string })).toBe('dead');
  });

  it('a pid now used by another process (another start time) is dead', () => {
    expect(judgeProcess({ ...me, start: '1' })).toBe('dead');
  });

  it.each([
    ['another host name', { host: `${hostname()}-other` }],
    ['another boot of the machine', { boot: '00000000-0000-0000-0000-000000000000' }],
    ['another pid namespace (a container sharing the host name)', { pidns: 'pid:[1]' }],
    ['a record without the boot id and pid namespace', { boot: undefined, pidns: undefined }],
  ])('%s cannot be judged from here', (_label, other) => {
    const holder = { ...me, ...other, pid: 999_999_999, start: undefined };
    expect(judgeProcess(holder as unknown as typeof me)).toBe('unknown');
  });
});

describe('option lockWait', () => {
  it('takes milliseconds or a duration string; anything else names the option', () => {
    const dir = tempDir();
    expect(thrownBy(() => new Checkpoint({ dir, lockWait: 'soon' }))).toEqual(
      new TypeError(
        "Expected `lockWait` to be milliseconds >= 0 or a duration like '30s', '5m', '2h', got `'soon'` (string)",
      ),
    );
    expect(thrownBy(() => new Checkpoint({ dir, lockWait: -1 }))).toEqual(
      new RangeError(
        "Expected `lockWait` to be milliseconds >= 0 or a duration like '30s', '5m', '2h', got `-1` (number)",
      ),
    );
    const chp = new Checkpoint({ name: 'ok', dir, lockWait: '2s', log: false });
    open.push(chp);
  });

  async function holdBriefly(dir: string, ms: number): Promise<number> {
    const child = spawn(process.execPath, [HOLD, dir, 'job', String(ms)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    return (JSON.parse((await lines.next()).value as string) as { pid: number }).pid;
  }

  it('the file store waits for a live holder to let go, with one notice', async () => {
    const dir = tempDir();
    const pid = await holdBriefly(dir, 1000);
    const lines: string[] = [];
    const chp = new Checkpoint({ name: 'job', dir, lockWait: '20s', log: (l) => lines.push(l) });
    open.push(chp);
    expect(lines).toEqual([
      `resumable-state: "job" is locked by pid ${pid}@${hostname()}: waiting up to 20s for it to let go (${join(dir, 'job.lock')})`,
    ]);
    expect(chp.restore({ n: 1 })).toEqual({ n: 0 });
  });

  it('the file store fails at once by default, and after lockWait if the holder stays', async () => {
    const dir = tempDir();
    const pid = await holdBriefly(dir, 60_000);
    const atOnce = thrownBy(() => new Checkpoint({ name: 'job', dir, log: false }));
    expect(atOnce).toBeInstanceOf(CheckpointLockedError);
    expect(atOnce).toMatchObject({ code: 'CHECKPOINT_LOCKED', pid, host: hostname() });
    const started = Date.now();
    const later = thrownBy(() => new Checkpoint({ name: 'job', dir, lockWait: 300, log: false }));
    expect(later).toBeInstanceOf(CheckpointLockedError);
    expect(later).toMatchObject({ pid });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });
});
