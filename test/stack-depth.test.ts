/**
 * #11.10: a valid, deeply nested state restored (or saved) from a deep call stack. Running
 * out of stack says where the call was made, not that the file is bad: no
 * CorruptCheckpointError, no fallback to an older generation, and a message saying what to do.
 * Since format 2 (#13.1) only saving can run out of stack: decoding is iterative.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { cleanedAfterEach } from './helpers.js';

const { tempDir } = cleanedAfterEach('rs-depth-');
const FIXTURE = new URL('./fixtures/codec/deep-stack.mjs', import.meta.url).pathname;
/** Deep enough that decoding needs more stack than 1,000 frames short of the end leave. */
const DEPTH = '1000';

function run(dir: string, mode: string, left = '1000') {
  const out = execFileSync(process.execPath, [FIXTURE, dir, mode, DEPTH, left], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out) as Record<string, unknown>;
}

describe('deeply nested state and a deep call stack', () => {
  test('restored from a deep stack: format 2 decodes without recursion, so it restores (#13.1)', () => {
    // Format 1 (node:v8) ran out of stack here (StateTooDeepError); format 2's decoder keeps
    // its own stack, so where restore() is called from no longer matters.
    const dir = tempDir();
    expect(run(dir, 'save')).toEqual({ saved: true, lines: [] });
    expect(run(dir, 'restore-deep')).toEqual({
      restored: true,
      lines: [expect.stringMatching(/^resumable-state: resumed "deep" from save #2 /)],
    });
    expect(run(dir, 'restore')).toEqual({
      restoredDepth: Number(DEPTH),
      lines: [expect.stringMatching(/^resumable-state: resumed "deep" from save #2 /)],
    });
  });

  test('saved from a deep stack: SerializationError naming where, with what to do', () => {
    const dir = tempDir();
    const saved = run(dir, 'save-deep');
    expect(saved.name).toBe('SerializationError');
    expect(saved.code).toBe('CHECKPOINT_UNSERIALIZABLE');
    expect(saved.path).toBe('state.list.next.next.next.next.next.next');
    expect(saved.message).toMatch(
      /^Cannot store the state: it is nested too deeply for the current call stack \(at `state\.list\.next\.next\.next\.next\.next\.next…`, \d+ levels down\)\. Save from a shallower point of your program, store deep chains as arrays, or raise the stack size \(node --stack-size=<kB>, e\.g\. 4000; the default is 984\)$/,
    );
  });
});
