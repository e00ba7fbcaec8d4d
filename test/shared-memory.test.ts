/**
 * #11.1: a state holding a typed array over a SharedArrayBuffer that another thread keeps
 * writing. The checksum must cover exactly the bytes written, so every save restores.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { Checkpoint } from '../dist/index.js';
import { cleanedAfterEach } from './helpers.js';

const { tempDir } = cleanedAfterEach('rs-shared-');
const SAVER = new URL('./fixtures/codec/shared-saver.mjs', import.meta.url).pathname;

function saveWhileWritten(dir: string, mode: 'save' | 'sync') {
  const out = execFileSync(process.execPath, [SAVER, dir, mode], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out) as { before: number; after: number }[];
}

/** Restores both generations in this process (a fresh instance); returns their counters. */
function restoredCounters(dir: string): Int32Array[] {
  const out: Int32Array[] = [];
  for (const keep of ['latest', 'older']) {
    const lines: string[] = [];
    const chp = new Checkpoint<{ counters: Int32Array }>({
      name: 'shared',
      dir,
      log: (line) => lines.push(line),
      signals: false,
    });
    const { counters } = chp.restore({ counters: new Int32Array(0) });
    chp.close();
    expect(lines.filter((l) => /corrupt|older generation/.test(l))).toEqual([]);
    out.push(counters);
    if (keep === 'latest') {
      // Drop the latest so the next instance must read the older generation.
      execFileSync('sh', ['-c', `mv "${dir}/shared.ckpt.1" "${dir}/shared.ckpt"`]);
    }
  }
  return out;
}

describe('typed arrays over shared memory written by another thread during saves', () => {
  test.each(['save', 'sync'] as const)(
    'after %s() calls, both generations restore, each a snapshot taken during its save',
    (mode) => {
      const dir = tempDir();
      const saves = saveWhileWritten(dir, mode);
      expect(saves).toHaveLength(5);
      const [latest, older] = restoredCounters(dir);
      const within = (counters: Int32Array, save: { before: number; after: number }) => {
        expect(counters.length).toBe(64 * 1024);
        let min = Number.POSITIVE_INFINITY;
        let max = Number.NEGATIVE_INFINITY;
        for (const v of counters) {
          min = Math.min(min, v);
          max = Math.max(max, v);
        }
        expect(min).toBeGreaterThanOrEqual(save.before);
        expect(max).toBeLessThanOrEqual(save.after);
      };
      within(latest!, saves[4]!);
      within(older!, saves[3]!);
    },
  );
});
