/** #11.4: a file is restored only as the checkpoint it was saved by (name and key). */
import { copyFileSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { Checkpoint, type CheckpointOptions } from '../dist/index.js';
import { legacySafeFileName, safeFileName } from '../dist/naming.js';
import { cleanedAfterEach } from './helpers.js';

const { tempDir, open } = cleanedAfterEach('rs-foreign-');
afterEach(() => {
  vi.useRealTimers();
});

/** A checkpoint closed after the test, its notices collected in `lines`. */
function checkpoint(options: CheckpointOptions, lines: string[] = []): Checkpoint {
  const chp = new Checkpoint({ signals: false, log: (line) => lines.push(line), ...options });
  open.push(chp);
  return chp;
}

function saved(options: CheckpointOptions, state: Record<string, unknown>): void {
  const chp = checkpoint(options);
  chp.restore({});
  chp.save(state);
  chp.close();
}

// Two names that shared one file in 0.1: the same first 91 characters, the same 32-bit hash.
const prefix =
  'summarize.https://docs.example.com/reports/quarterly/2026/annual-financial-statements/summary?page=';
const A = `${prefix}11844`;
const B = `${prefix}21272`;

describe('a file holding another checkpoint', () => {
  test('two long names that collided in 0.1 keep their own states', () => {
    const dir = tempDir();
    saved({ name: A, dir }, { page: 11844 });
    const lines: string[] = [];
    const b = checkpoint({ name: B, dir }, lines);
    expect(b.restore({ page: 0 })).toEqual({ page: 0 });
    expect(b.restored).toBe(false);
    expect(lines).toEqual([]);
    expect(checkpoint({ name: A, dir }).restore({ page: 0 })).toEqual({ page: 11844 });
  });

  test('a file copied under another name is not restored, is kept aside, and says so', () => {
    const dir = tempDir();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-02T00:00:01Z'));
    saved({ name: 'first', dir }, { n: 1 });
    copyFileSync(join(dir, 'first.ckpt'), join(dir, 'second.ckpt'));
    const lines: string[] = [];
    const second = checkpoint({ name: 'second', dir }, lines);
    expect(second.restore({ n: 0 })).toEqual({ n: 0 });
    expect(second.restored).toBe(false);
    const aside = join(dir, 'second.ckpt.foreign-20260102T000001000Z');
    expect(lines).toEqual([
      `resumable-state: ${join(dir, 'second.ckpt')} holds checkpoint "first", not "second"; starting fresh (its files kept as ${aside})`,
    ]);
    expect(readFileSync(aside)).toEqual(readFileSync(join(dir, 'first.ckpt')));
    second.save();
    second.close();
    expect(checkpoint({ name: 'second', dir }).info).toBeUndefined();
    const again = checkpoint({ name: 'second', dir });
    expect(again.restore({ n: 5 })).toEqual({ n: 0 });
    expect(again.info?.name).toBe('second');
  });

  test('a file of the same name saved with another key is not restored', () => {
    const dir = tempDir();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-02T00:00:01Z'));
    const keyed = checkpoint({ name: 'job', key: { run: 1 }, dir });
    keyed.restore({ n: 1 });
    keyed.save();
    keyed.close();
    const lines: string[] = [];
    const plain = checkpoint({ name: keyed.name, dir }, lines);
    expect(plain.restore({ n: 0 })).toEqual({ n: 0 });
    const file = join(dir, `${keyed.name}.ckpt`);
    expect(lines).toEqual([
      `resumable-state: ${file} holds checkpoint "${keyed.name}" key {"run":1}, not "${keyed.name}"; starting fresh (its files kept as ${file}.foreign-20260102T000001000Z)`,
    ]);
  });

  test('an older generation of its own is restored, and written back as the latest', () => {
    const dir = tempDir();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-02T00:00:01Z'));
    saved({ name: 'other', dir }, { who: 'other' });
    const own = checkpoint({ name: 'own', dir });
    own.restore({ who: 'own', n: 1 });
    own.save();
    own.save({ who: 'own', n: 2 });
    own.close();
    copyFileSync(join(dir, 'other.ckpt'), join(dir, 'own.ckpt'));
    const lines: string[] = [];
    const again = checkpoint({ name: 'own', dir }, lines);
    expect(again.restore({})).toEqual({ who: 'own', n: 1 });
    const tag = 'foreign-20260102T000001000Z';
    expect(lines).toEqual([
      `resumable-state: ${join(dir, 'own.ckpt')} holds checkpoint "other", not "own"; falling back to the older generation ${join(dir, 'own.ckpt.1')}, saved again as the latest (every file kept as ${join(dir, `own.ckpt.${tag}`)}, ${join(dir, `own.ckpt.1.${tag}`)})`,
      `resumable-state: resumed "own" from save #1 of 0.0s ago (${join(dir, 'own.ckpt')})`,
    ]);
    expect(
      readdirSync(dir)
        .filter((f) => f.startsWith('own.ckpt'))
        .sort(),
    ).toEqual(['own.ckpt', `own.ckpt.1.${tag}`, `own.ckpt.${tag}`]);
  });

  test('a name from a file is escaped in the notice', () => {
    const dir = tempDir();
    const evil = 'x\u001b]0;pwned\u0007\u001b[2J';
    saved({ name: evil, dir }, { n: 1 });
    copyFileSync(join(dir, `${safeFileName(evil)}.ckpt`), join(dir, 'mine.ckpt'));
    const lines: string[] = [];
    checkpoint({ name: 'mine', dir }, lines).restore({});
    expect(lines[0]).toContain('holds checkpoint "x\\x1b]0;pwned\\x07\\x1b[2J", not "mine"');
  });
});

describe('checkpoints saved by 0.1 under its 32-bit file names', () => {
  /** Saves `name`, then renames its files to the file name 0.1 gave it. */
  function savedBy01(dir: string, name: string, state: Record<string, unknown>): void {
    saved({ name, dir }, state);
    for (const entry of readdirSync(dir)) {
      const base = safeFileName(name);
      if (entry.startsWith(`${base}.ckpt`)) {
        renameSync(
          join(dir, entry),
          join(dir, legacySafeFileName(name) + entry.slice(base.length)),
        );
      }
    }
  }

  test('are restored, and moved to their new file name', () => {
    const dir = tempDir();
    savedBy01(dir, A, { page: 11844 });
    const lines: string[] = [];
    const a = checkpoint({ name: A, dir }, lines);
    expect(a.restore({ page: 0 })).toEqual({ page: 11844 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^resumable-state: resumed ".*page=11844" from save #1 of /);
    expect(readdirSync(dir).filter((f) => f.includes('.ckpt'))).toEqual([
      `${safeFileName(A)}.ckpt`,
    ]);
  });

  test("another name's 0.1 file at the same file name is neither restored nor moved", () => {
    const dir = tempDir();
    savedBy01(dir, A, { page: 11844 });
    const lines: string[] = [];
    const b = checkpoint({ name: B, dir }, lines);
    expect(b.restore({ page: 0 })).toEqual({ page: 0 });
    expect(lines).toEqual([]);
    b.save();
    b.close();
    expect(
      readdirSync(dir)
        .filter((f) => f.includes('.ckpt'))
        .sort(),
    ).toEqual([`${legacySafeFileName(A)}.ckpt`, `${safeFileName(B)}.ckpt`].sort());
    expect(checkpoint({ name: A, dir }).restore({ page: 0 })).toEqual({ page: 11844 });
  });
});
