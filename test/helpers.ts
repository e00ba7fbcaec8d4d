/** Small helpers shared by the test files. */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { decodeState, encodeState } from '../dist/codec/serializer.js';

/** Runs `fn`, which must throw; returns what it threw. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

/** Awaits `promise`, which must reject; returns the rejection. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/**
 * What a test file opens, undone after each test: checkpoints pushed to `open` are closed,
 * child processes pushed to `children` killed, folders from `tempDir()` removed.
 */
export function cleanedAfterEach(prefix: string) {
  const made: string[] = [];
  const children: ChildProcess[] = [];
  const open: { close(): void }[] = [];
  afterEach(() => {
    for (const chp of open.splice(0)) chp.close();
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return {
    children,
    open,
    /** A fresh folder in the system temp dir, removed after the test. */
    tempDir(): string {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
  };
}

/**
 * The pid of a process that has just exited. Printed with `-e`, not `-p`: `-p` inspects the
 * value, in colour when the environment forces it (FORCE_COLOR), which no longer parses.
 */
export function exitedPid(): number {
  const pid = Number(
    execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    }),
  );
  if (!(pid > 0)) throw new Error(`could not read a child's pid: ${pid}`);
  return pid;
}

/** The metadata a test puts in a checkpoint file it builds by hand (sizes are added by the codec). */
export function fileMeta() {
  const now = new Date().toISOString();
  return {
    name: 'job',
    source: {},
    createdAt: now,
    savedAt: now,
    saves: 1,
    library: 'resumable-state@0.1.0',
    node: process.version,
    host: 'test',
    pid: 1,
  };
}

/**
 * Runs `body` while `proto` has a setter at `key` that counts its calls (what a decoder must
 * never reach); the setter is removed after. Returns the count.
 */
export function settersCalledDuring(proto: object, key: PropertyKey, body: () => void): number {
  let calls = 0;
  Object.defineProperty(proto, key, {
    set() {
      calls++;
    },
    configurable: true,
  });
  try {
    body();
  } finally {
    delete (proto as Record<PropertyKey, unknown>)[key];
  }
  return calls;
}

/** The path of a built module, as a JS string literal, for scripts run by `runModule`. */
export const distModule = (file: string) =>
  JSON.stringify(fileURLToPath(new URL(`../dist/${file}`, import.meta.url)));

/** Runs an ES module's source in a fresh Node process; returns what it printed. */
export function runModule(script: string): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
  });
}

/** `value` encoded and decoded by the state serializer (format 2), segments as fresh buffers. */
export function portableRoundTrip(value: unknown): unknown {
  const { structure, segments } = encodeState({ value });
  return decodeState(
    structure,
    segments.map((s) => s.slice().buffer),
  ).value;
}
