/**
 * Progress bar of `chp.range`/`chp.each` (option `progress: true`), drawn by cli-progress on an
 * interactive terminal only: nothing is written to a pipe, a file, a dumb terminal or in CI.
 *
 * The bar starts at the restored position (`30/100` when 30 items were done by earlier runs),
 * and its rate and ETA come from this run's own speed: items done since this run's loop started
 * divided by the time since then, so the items restored from disk do not count as done in no
 * time. One bar at a time in the process: loops started while a bar is shown (inner loops,
 * another checkpoint's) get none.
 *
 * @module
 */
import { createRequire } from 'node:module';
import type cliProgressTypes from 'cli-progress';
import { formatDuration } from './durations.js';
import type { LoopProgress, ProgressFactory } from './loops.js';

type CliProgress = typeof cliProgressTypes;

/** Where the bar is drawn: `process.stderr`, or anything with the same few members. */
export type ProgressStream =
  | NodeJS.WriteStream
  | { isTTY?: boolean; write(chunk: string): unknown; columns?: number };

/** Redraws per second at most (cli-progress redraws a busy synchronous loop at half this rate). */
const FPS = 10;
/** Width of the bar itself, in characters. */
const BAR_SIZE = 24;

const NO_PROGRESS: LoopProgress = { tick() {}, stop() {} };

let barMissingSaid = false;

/** The stream of the bar being shown, if any: one at a time in the process. */
let shownOn: ProgressStream | undefined;

/**
 * Ends the line of the bar being shown, if any, so that a notice written next (resumed, saved
 * on a signal) starts on a line of its own. The bar is drawn again at its next change.
 */
export function breakProgressLine(): void {
  shownOn?.write('\n');
}

/** Whether `env` says this runs in CI: `CI` set to anything but '', '0' or 'false'. */
function inCI(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/** `1234/s`, `12.5/s`, `0.25/s`. */
function formatRate(perSecond: number): string {
  if (perSecond >= 100) return `${Math.round(perSecond)}/s`;
  if (perSecond >= 1) return `${perSecond.toFixed(1)}/s`;
  return `${perSecond.toPrecision(2)}/s`;
}

/** What one frame shows, computed from this run's start: the restored items are not this run's work. */
export function formatFrame(
  label: string,
  startValue: number,
  startTime: number,
  value: number,
  total: number | undefined,
  now: number,
  bar: string,
): string {
  const seconds = (now - startTime) / 1000;
  const doneHere = value - startValue;
  const rate = seconds > 0 && doneHere > 0 ? doneHere / seconds : undefined;
  const speed = rate === undefined ? '-/s' : formatRate(rate);
  if (total === undefined) {
    return `${label} ${value} done | ${speed} | ${formatDuration(seconds)}`;
  }
  const percent = total > 0 ? Math.floor((Math.min(value, total) / total) * 100) : 100;
  const eta = rate === undefined ? '-' : formatDuration(Math.max(0, total - value) / rate);
  return `${label} [${bar}] ${percent}% | ${value}/${total} | ${speed} | ETA ${eta}`;
}

let loaded: { cliProgress: CliProgress; LoopBar: typeof cliProgressTypes.SingleBar } | undefined;

/**
 * cli-progress, loaded on the first bar shown, never at import: a CommonJS package that
 * requires Node built-ins, which makes an app bundled as ESM fail at start (#12.3). Loaded
 * synchronously because a bar starts inside synchronous loops. Throws if it cannot be found.
 */
function loadBar(): NonNullable<typeof loaded> {
  if (loaded !== undefined) return loaded;
  const cliProgress = createRequire(import.meta.url)('cli-progress') as CliProgress;
  /** cli-progress's SingleBar whose redraw timer does not keep the process alive. */
  class LoopBar extends cliProgress.SingleBar {
    override render(): void {
      super.render();
      (this as unknown as { timer?: NodeJS.Timeout | null }).timer?.unref?.();
    }
  }
  loaded = { cliProgress, LoopBar };
  return loaded;
}

/**
 * The `progress` function of a loop host drawing on `stream`, or `undefined` (no progress
 * display) when `stream` is not a TTY, `env.CI` is set (not to '', '0' or 'false') or
 * `env.TERM` is `dumb`.
 *
 * Ticks are cheap: the bar is updated every `stride` ticks, a stride that adapts so that updates
 * come every 16 to 64 ms, and redrawn at most {@link FPS} times a second.
 */
export function createProgress(
  stream: ProgressStream,
  env: NodeJS.ProcessEnv = process.env,
): ProgressFactory | undefined {
  if (stream.isTTY !== true || inCI(env) || env.TERM === 'dumb') return undefined;
  return (label, done, total) => {
    if (shownOn !== undefined) return NO_PROGRESS;
    let bars: NonNullable<typeof loaded>;
    try {
      bars = loadBar();
    } catch (err) {
      // A bundle without cli-progress beside it: say it once, run without a bar.
      if (!barMissingSaid) {
        barMissingSaid = true;
        stream.write(
          `resumable-state: no progress bar: ${(err as Error).message.split('\n')[0]}\n`,
        );
      }
      return NO_PROGRESS;
    }
    const { cliProgress, LoopBar } = bars;
    shownOn = stream;
    const startValue = done;
    let startTime = Date.now();
    const bar = new LoopBar({
      stream: stream as NodeJS.WritableStream,
      fps: FPS,
      barsize: BAR_SIZE,
      linewrap: true, // cut to the width instead of switching the terminal's wrapping off
      hideCursor: false,
      gracefulExit: false, // the checkpoint handles signals
      clearOnComplete: false,
      stopOnComplete: false,
      format: (options, params) =>
        formatFrame(
          label,
          startValue,
          startTime,
          params.value,
          total,
          Date.now(),
          total === undefined
            ? ''
            : cliProgress.Format.BarFormat(params.progress, options as cliProgressTypes.Options),
        ),
    });
    bar.start(total ?? 0, done);
    startTime = Date.now();
    let stride = 1;
    let countdown = 1;
    let last = startTime;
    let latest = done;
    let stopped = false;
    return {
      tick(value: number): void {
        latest = value;
        if (--countdown > 0) return;
        const now = Date.now();
        const elapsed = now - last;
        last = now;
        if (elapsed < 16 && stride < 1 << 24) stride *= 2;
        else if (elapsed > 64 && stride > 1) stride >>= 1;
        countdown = stride;
        bar.update(value);
      },
      stop(): void {
        if (stopped) return;
        stopped = true;
        shownOn = undefined;
        bar.update(latest);
        bar.stop();
      },
    };
  };
}
