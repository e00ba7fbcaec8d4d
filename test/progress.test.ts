/**
 * The progress bar of `progress: true` (src/progress.ts), drawn into a fake terminal.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatDuration } from '../src/durations.js';
import { each, type LoopHost, range } from '../src/loops.js';
import { breakProgressLine, createProgress, formatFrame } from '../src/progress.js';

/** A fake TTY: collects what is written; `screen()` is the text with escape sequences removed. */
function fakeTerminal(columns = 100) {
  const chunks: string[] = [];
  return {
    isTTY: true as const,
    columns,
    chunks,
    write(chunk: string) {
      chunks.push(chunk);
      return true;
    },
    /** The frames drawn so far, as plain text (cursor moves and clears removed). */
    frames(): string[] {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
      const text = chunks.join('').replace(/\x1b(?:\[[0-9;?]*[A-Za-z]|[78])/g, '\n');
      return text.split('\n').filter((line) => line.trim() !== '');
    },
  };
}

const NO_CI = { TERM: 'xterm-256color' };

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'], now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('createProgress', () => {
  it('draws nothing when the stream is not a terminal, in CI, or on a dumb terminal', () => {
    expect(createProgress({ isTTY: false, write: () => true }, NO_CI)).toBeUndefined();
    expect(createProgress({ write: () => true }, NO_CI)).toBeUndefined();
    expect(createProgress(fakeTerminal(), { CI: 'true' })).toBeUndefined();
    expect(createProgress(fakeTerminal(), { CI: '1' })).toBeUndefined();
    expect(createProgress(fakeTerminal(), { TERM: 'dumb' })).toBeUndefined();
    expect(createProgress(fakeTerminal(), { CI: 'false' })).toBeTypeOf('function');
    expect(createProgress(fakeTerminal(), { CI: '' })).toBeTypeOf('function');
  });

  it('starts the bar at the restored position, not at 0', () => {
    const term = fakeTerminal();
    const progress = createProgress(term, NO_CI)!;
    const bar = progress('primes.mjs:12:20', 30, 100);
    const first = term.frames()[0];
    expect(first).toContain('30/100');
    expect(first).toContain('30%');
    expect(first).toContain('primes.mjs:12:20');
    // No rate or ETA before this run has done anything.
    expect(first).toContain('-/s | ETA -');
    bar.stop();
  });

  it('computes rate and ETA from this run’s speed only', () => {
    const term = fakeTerminal();
    const bar = createProgress(term, NO_CI)!('loop', 30, 100);
    vi.advanceTimersByTime(1000);
    bar.tick(40); // 10 items in 1 s in this run: 60 left at 10/s = 6 s (not 60 at 40/s)
    const frame = term.frames().at(-1)!;
    expect(frame).toContain('40/100');
    expect(frame).toContain('10.0/s');
    expect(frame).toContain('ETA 6s');
    bar.stop();
  });

  it('draws the final position and a newline on stop', () => {
    const term = fakeTerminal();
    const bar = createProgress(term, NO_CI)!('loop', 0, 10);
    for (let i = 1; i <= 10; i++) bar.tick(i); // ticks too close together to redraw each
    vi.advanceTimersByTime(2000);
    bar.stop();
    expect(term.frames().at(-1)).toContain('10/10');
    expect(term.chunks.at(-1)).toBe('\n');
    bar.stop(); // idempotent
    expect(term.chunks.at(-1)).toBe('\n');
  });

  it('shows a count without a bar when the total is unknown', () => {
    const term = fakeTerminal();
    const bar = createProgress(term, NO_CI)!('stream.mjs:3:9', 5, undefined);
    vi.advanceTimersByTime(2000);
    bar.tick(25);
    expect(term.frames().at(-1)).toBe('stream.mjs:3:9 25 done | 10.0/s | 2s');
    bar.stop();
  });

  it('shows one bar at a time: loops inside a shown one get none', () => {
    const term = fakeTerminal();
    const progress = createProgress(term, NO_CI)!;
    const outer = progress('outer', 0, 3);
    const written = term.chunks.length;
    const inner = progress('inner', 0, 50);
    inner.tick(10);
    inner.stop();
    expect(term.chunks.length).toBe(written);
    outer.stop();
    const next = progress('next', 0, 5);
    expect(term.frames().at(-1)).toContain('next');
    next.stop();
  });

  it('shows one bar in the process, whichever checkpoint’s loop started it', () => {
    const a = fakeTerminal();
    const b = fakeTerminal();
    const first = createProgress(a, NO_CI)!('a', 0, 3);
    const second = createProgress(b, NO_CI)!('b', 0, 3);
    second.tick(1);
    second.stop();
    expect(b.chunks).toEqual([]);
    first.stop();
  });

  it('ends the bar’s line before a notice, and redraws it at its next change', () => {
    const term = fakeTerminal();
    const bar = createProgress(term, NO_CI)!('loop', 3, 10);
    breakProgressLine();
    expect(term.chunks.at(-1)).toBe('\n');
    vi.advanceTimersByTime(1000);
    bar.tick(4);
    expect(term.frames().at(-1)).toContain('4/10');
    bar.stop();
    const written = term.chunks.length;
    breakProgressLine(); // no bar shown: nothing written
    expect(term.chunks.length).toBe(written);
  });

  it('cuts frames to the terminal width', () => {
    const term = fakeTerminal(30);
    const bar = createProgress(term, NO_CI)!('a-rather-long-loop-label.mjs:100:20', 1, 1000);
    expect(Math.max(...term.frames().map((f) => f.length))).toBeLessThanOrEqual(30);
    bar.stop();
  });

  it('keeps no timer alive: a finished loop leaves nothing scheduled', () => {
    const term = fakeTerminal();
    const bar = createProgress(term, NO_CI)!('loop', 0, 10);
    bar.tick(5);
    bar.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('is driven by range/each from the restored position', () => {
    const term = fakeTerminal();
    const host: LoopHost = {
      loops: new Map(),
      sync: () => vi.advanceTimersByTime(100),
      progress: createProgress(term, NO_CI),
    };
    const loop = (h: LoopHost) => range(h, loop, 20);
    const run = (h: LoopHost, stopAt: number) => {
      for (const i of loop(h)) if (i === stopAt) break;
    };
    run(host, 12);
    expect(term.frames()[0]).toContain('0/20');
    expect(term.frames().at(-1)).toContain('12/20');
    term.chunks.length = 0;
    const again: LoopHost = { ...host, loops: new Map(host.loops) };
    run(again, -1);
    expect(term.frames()[0]).toContain('12/20');
    expect(term.frames().at(-1)).toContain('20/20');
    expect(term.frames().at(-1)).toContain('100%');
    term.chunks.length = 0;
    for (const _ of each(host, loop, new Set([1, 2]))) vi.advanceTimersByTime(500);
    expect(term.frames()[0]).toContain('0/2');
  });
});

describe('formatting', () => {
  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(59.4)).toBe('59s');
    expect(formatDuration(125)).toBe('2m05s');
    expect(formatDuration(3 * 3600 + 7 * 60 + 5)).toBe('3h07m');
  });

  it('formats a frame from this run’s start', () => {
    expect(formatFrame('L', 30, 0, 30, 100, 0, '##')).toBe('L [##] 30% | 30/100 | -/s | ETA -');
    expect(formatFrame('L', 30, 0, 130, 1000, 2000, '##')).toBe(
      'L [##] 13% | 130/1000 | 50.0/s | ETA 17s',
    );
    expect(formatFrame('L', 0, 0, 3, 100, 10_000, '')).toContain('0.30/s | ETA 5m23s');
    expect(formatFrame('L', 0, 0, 5000, 1e6, 1000, '')).toContain('5000/s');
    expect(formatFrame('L', 0, 0, 0, 0, 0, '')).toContain('100%');
  });
});
