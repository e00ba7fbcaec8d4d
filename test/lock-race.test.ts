/**
 * The lock under a race (#11.2): many processes take one checkpoint's lock at the same
 * instant, whatever its file held before (nothing, a dead owner's lock, a live owner's,
 * garbage, an empty or truncated file, an oversized one, a FIFO, a symlink to /dev/zero).
 * Exactly one owner every round: none of the racers when a live process holds it.
 *
 * The racers are long-lived child processes (test/fixtures/lock/racer.mjs) that each start
 * a round by spinning until the same instant, so a round costs no process start.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanedAfterEach, exitedPid } from './helpers.js';

const RACER = fileURLToPath(new URL('./fixtures/lock/racer.mjs', import.meta.url));
const RACERS = 12;
/** Generous: a round takes well under a second; a hang (a FIFO read) never ends. */
const ROUND_TIMEOUT_MS = 15_000;

const { tempDir } = cleanedAfterEach('rs-lock-race-');

interface Answer {
  round?: number;
  owner?: boolean;
  code?: string;
  message?: string;
  released?: number;
}

interface Racer {
  child: ChildProcess;
  send(command: object): void;
  /** The next line it prints, parsed. */
  next(): Promise<Answer>;
}

function startRacer(): Promise<Racer> {
  const child = spawn(process.execPath, [RACER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let buffered = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const line of parts) {
      const waiter = waiting.shift();
      if (waiter === undefined) lines.push(line);
      else waiter(line);
    }
  });
  const nextLine = () =>
    new Promise<string>((resolve) => {
      const line = lines.shift();
      if (line === undefined) waiting.push(resolve);
      else resolve(line);
    });
  return nextLine().then((ready) => {
    expect(ready).toBe('"ready"');
    return {
      child,
      send: (command) => child.stdin!.write(`${JSON.stringify(command)}\n`),
      next: async () => JSON.parse(await nextLine()) as Answer,
    };
  });
}

function withTimeout<R>(promise: Promise<R>, what: string): Promise<R> {
  return Promise.race([
    promise,
    new Promise<R>((_, reject) =>
      setTimeout(
        () => reject(new Error(`${what}: no answer within ${ROUND_TIMEOUT_MS} ms`)),
        ROUND_TIMEOUT_MS,
      ).unref(),
    ),
  ]);
}

/** Process start time (clock ticks since boot), as the lock records it. */
function startOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

let racers: Racer[] = [];
let deadPid = 0;

beforeAll(async () => {
  deadPid = exitedPid();
  racers = await Promise.all(Array.from({ length: RACERS }, startRacer));
});

afterAll(() => {
  for (const racer of racers) racer.child.kill('SIGKILL');
});

type Start =
  | { kind: 'none' }
  | { kind: 'stale' }
  | { kind: 'live' }
  | { kind: 'garbage'; bytes: Uint8Array }
  | { kind: 'empty' }
  | { kind: 'truncated'; keep: number }
  | { kind: 'oversized' }
  | { kind: 'fifo' }
  | { kind: 'zero-symlink' };

const record = (pid: number, start?: string) =>
  JSON.stringify({
    pid,
    host: hostname(),
    since: '2024-01-01T00:00:00.000Z',
    token: '0123456789abcdef',
    ...(start === undefined ? {} : { start }),
  });

/** Puts the starting content at `lock`; returns what a live holder's lock holds, if any. */
function plant(lock: string, start: Start): string | undefined {
  switch (start.kind) {
    case 'none':
      return undefined;
    case 'stale':
      writeFileSync(lock, record(deadPid));
      return undefined;
    case 'live': {
      // This test process: alive, and not a racer.
      const content = record(process.pid, startOf(process.pid));
      writeFileSync(lock, content);
      return content;
    }
    case 'garbage':
      writeFileSync(lock, start.bytes);
      return undefined;
    case 'empty':
      writeFileSync(lock, '');
      return undefined;
    case 'truncated': {
      // What a power cut can leave of a lock being written: a prefix of a record.
      const full = record(process.pid, startOf(process.pid));
      writeFileSync(lock, full.slice(0, start.keep % full.length));
      return undefined;
    }
    case 'oversized':
      // A valid record of a live process, padded past the 4 KiB a lock may hold.
      writeFileSync(lock, record(process.pid).padEnd(5000, ' '));
      return undefined;
    case 'fifo':
      execFileSync('mkfifo', [lock]);
      return undefined;
    case 'zero-symlink':
      symlinkSync('/dev/zero', lock);
      return undefined;
  }
}

const starts: fc.Arbitrary<Start> = fc.oneof(
  fc.constant<Start>({ kind: 'none' }),
  fc.constant<Start>({ kind: 'stale' }),
  fc.constant<Start>({ kind: 'live' }),
  fc
    .uint8Array({ minLength: 1, maxLength: 64 })
    .map((bytes): Start => ({ kind: 'garbage', bytes })),
  fc.constant<Start>({ kind: 'empty' }),
  fc.nat().map((keep): Start => ({ kind: 'truncated', keep })),
  fc.constant<Start>({ kind: 'oversized' }),
  fc.constant<Start>({ kind: 'fifo' }),
  fc.constant<Start>({ kind: 'zero-symlink' }),
);

let round = 0;

/** One round: `count` racers take the lock of `job` at the same instant. */
async function race(start: Start, count: number): Promise<void> {
  const dir = tempDir();
  const lock = join(dir, 'job.lock');
  const liveContent = plant(lock, start);
  const at = Date.now() + 200;
  const n = ++round;
  const taking = racers.slice(0, count);
  for (const racer of taking) racer.send({ take: n, dir, name: 'job', at });
  const answers = await withTimeout(
    Promise.all(taking.map((racer) => racer.next())),
    `round ${n} (${start.kind})`,
  );
  const owners = taking.filter((_, i) => answers[i]!.owner === true);
  const refused = answers.filter((a) => a.owner !== true);
  try {
    expect(refused.map((a) => a.code)).toEqual(refused.map(() => 'CHECKPOINT_LOCKED'));
    if (liveContent !== undefined) {
      // The live holder keeps it: no racer owns it, and its lock is untouched.
      expect(owners.length).toBe(0);
      expect(readFileSync(lock, 'utf8')).toBe(liveContent);
    } else {
      expect(owners.length).toBe(1);
      // The lock names the owner, in full: written before it became visible.
      const held = JSON.parse(readFileSync(lock, 'utf8')) as { pid: number };
      expect(held.pid).toBe(owners[0]!.child.pid);
      expect(lstatSync(lock).isFile()).toBe(true);
      // Nothing left behind but the lock (no temp file, no takeover marker).
      expect(readdirSync(dir)).toEqual(['job.lock']);
    }
  } finally {
    for (const racer of taking) racer.send({ release: n });
    await withTimeout(Promise.all(taking.map((racer) => racer.next())), `release ${n}`);
  }
  if (liveContent === undefined) expect(readdirSync(dir)).toEqual([]);
}

describe('lock race (property)', () => {
  it('exactly one owner per round, whatever the lock file held before', async () => {
    await fc.assert(fc.asyncProperty(starts, fc.integer({ min: 2, max: RACERS }), race), {
      numRuns: 30,
    });
  });

  it.each([
    'none',
    'stale',
    'live',
    'empty',
    'truncated',
    'oversized',
    'fifo',
    'zero-symlink',
  ] as const)(
    `${RACERS} racers at once, the lock file %s: one owner (none if live)`,
    async (kind) => {
      await race(kind === 'truncated' ? { kind, keep: 17 } : ({ kind } as Start), RACERS);
    },
  );
});
