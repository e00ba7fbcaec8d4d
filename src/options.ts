/**
 * Options of a Checkpoint: declared once with their defaults, validated once.
 */
import type { Compression } from './codec/compression.js';
import { resolveShard, type Shard } from './shard.js';
import type { CheckpointStore } from './store/store.js';

/** Where one-line notices go: a function, a stream-like object, or `false` for silence. */
export type LogTarget = false | ((line: string) => void) | { write(chunk: string): unknown };

/** Options of `new Checkpoint(options)`; every field is optional. */
export interface CheckpointOptions {
  /**
   * Checkpoint name; a safe file name is derived from it.
   * @default the calling function's name qualified by its file (`primes.computePrimes`);
   *   top-level code: the file's name. Pass it explicitly for inline callbacks and minified code.
   */
  name?: string;
  /** Anything that tells runs of the same function apart (arguments, config); hashed into the name. */
  key?: unknown;
  /**
   * Folder of the default file store. Env `RESUME_DIR` overrides the default.
   * @default `.checkpoints` in the nearest folder above the calling file holding a package.json
   */
  dir?: string;
  /** Another store, e.g. `memoryStore()`. @default `fileStore(dir)` */
  store?: CheckpointStore;
  /** Minimum time between two `sync()` writes: milliseconds or `'30s'`, `'5m'`, `'2h'`. @default '30s' */
  interval?: number | string;
  /** Saved state older than this is ignored and moved aside; `false` disables. @default '24h' */
  expire?: number | string | false;
  /** Ignore any saved state and start fresh. @default false */
  clean?: boolean;
  /** `false` turns every method into a no-op (env `RESUME=off` does the same). @default true */
  enabled?: boolean;
  /** Seed of `chp.random`. @default a fresh random seed, recorded in the checkpoint */
  seed?: number | string;
  /**
   * Route `Math.random` through `chp.random` from creation until `close()`, so that code
   * calling `Math.random` (yours or a library's) is deterministic and resumes exactly.
   * Checkpoints open inside each other put it back in order. @default false
   */
  mathRandom?: boolean;
  /** Generations kept on disk; a corrupt latest one falls back to the previous. @default 2 */
  keep?: number;
  /** On SIGINT/SIGTERM/SIGHUP save the tracked state, then exit as the signal would. @default true */
  signals?: boolean;
  /** Codec for the payload; incompressible chunks are always stored raw. @default 'brotli' */
  compression?: Compression;
  /**
   * Your schema version of the state. Saved state of another version is not restored as is:
   * `migrate` converts it, or else `onVersionMismatch` decides. @default none (not checked)
   */
  version?: string | number;
  /** Converts saved state of another `version`: `(old, fromVersion) => newState`. */
  migrate?: (old: unknown, fromVersion: string | number | undefined) => unknown;
  /**
   * Without `migrate`: `'fresh'` moves the old files aside, says so and starts from
   * `initial`; `'error'` throws VersionMismatchError. @default 'fresh'
   */
  onVersionMismatch?: 'fresh' | 'error';
  /** Where the one-line notices go (resumed, expired, fell back). @default process.stderr */
  log?: LogTarget;
  /**
   * Show a progress bar with rate and ETA for `range`/`each` on stderr, starting at the
   * restored position, when stderr is an interactive terminal (never on a pipe or a file, on
   * a `dumb` terminal, or when env `CI` is set). One bar at a time: the outermost loop's.
   * @default false
   */
  progress?: boolean;
  /**
   * When `once()` resolves: `'step'` after its result is on disk (steps finishing together
   * share one flush), so a resolved step is never paid for again, even after a SIGKILL or a
   * power loss; `'batched'` at once, the result being flushed within `batchDelay` (faster;
   * a crash may then lose that long of results, which run again).
   * @default 'step'
   */
  durable?: 'step' | 'batched';
  /**
   * How long `new Checkpoint` waits for a checkpoint locked by another process. A shared
   * store's lease held by a process on another host (which cannot be checked from here)
   * is waited for until it expires, then taken over; a holder that renews it meanwhile is
   * alive, and `CheckpointLockedError` is thrown. A holder on this host is judged at once:
   * dead, it is taken over; alive, the file store waits this long for it to let go, a shared
   * store refuses at once. Milliseconds or `'30s'`, `'5m'`; `0` fails at once.
   * @default the lease's remaining time plus 2 s (file store: 0)
   */
  lockWait?: number | string;
  /** Longest wait of a batched step result before it is flushed. @default '100ms' */
  batchDelay?: number | string;
  /** Retries of a `once()` step that throws, within one run (a failed step runs again on the next run anyway). @default 0 */
  retries?: number;
  /** Delay before the first retry, doubled for each next one, with jitter (at most 60 s). @default '1s' */
  retryDelay?: number | string;
  /**
   * This task's shard of an array job (#15): the checkpoint is named
   * `<name>.shard-<index>-of-<count>`, and top-level `range`/`each` loops visit only the items
   * at positions `i` with `i % count === index`. `'auto'` reads the index from
   * `JOB_COMPLETION_INDEX` (Kubernetes), `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` (SLURM)
   * or `AWS_BATCH_JOB_ARRAY_INDEX` (AWS Batch), and the count from `SLURM_ARRAY_TASK_COUNT` or
   * `RESUME_SHARDS`. @default none
   */
  shard?: Shard | 'auto';
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  name: string | undefined;
  key: unknown;
  dir: string | undefined;
  store: CheckpointStore | undefined;
  intervalMs: number;
  expireMs: number | false;
  clean: boolean;
  enabled: boolean;
  seed: number | string | undefined;
  mathRandom: boolean;
  progress: boolean;
  keep: number;
  signals: boolean;
  compression: Compression;
  log: (line: string) => void;
  version: string | number | undefined;
  migrate: ((old: unknown, fromVersion: string | number | undefined) => unknown) | undefined;
  onVersionMismatch: 'fresh' | 'error';
  durable: 'step' | 'batched';
  batchDelayMs: number;
  /** undefined: the store's default (a lease's remaining time plus a margin). */
  lockWaitMs: number | undefined;
  retries: number;
  retryDelayMs: number;
  shard: Shard | undefined;
}

/** Validates the options of one `once()` call (or the checkpoint's defaults for it). */
export function resolveStepOptions(
  options: { durable?: unknown; retries?: unknown; retryDelay?: unknown },
  where = '',
): { durable?: 'step' | 'batched'; retries?: number; retryDelay?: number } {
  const out: { durable?: 'step' | 'batched'; retries?: number; retryDelay?: number } = {};
  if (where !== '') {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (!['durable', 'retries', 'retryDelay'].includes(key)) {
        throw new TypeError(`Unknown option \`${where}${key}\``);
      }
    }
  }
  const { durable, retries, retryDelay } = options;
  if (durable !== undefined) {
    if (durable !== 'step' && durable !== 'batched') {
      throw new TypeError(
        `Expected \`${where}durable\` to be 'step' or 'batched', got ${describe(durable)}`,
      );
    }
    out.durable = durable;
  }
  if (retries !== undefined) {
    if (!Number.isInteger(retries) || (retries as number) < 0 || (retries as number) > 1000) {
      throw new RangeError(
        `Expected \`${where}retries\` to be an integer from 0 to 1000, got ${describe(retries)}`,
      );
    }
    out.retries = retries as number;
  }
  if (retryDelay !== undefined) out.retryDelay = parseDuration(retryDelay, `${where}retryDelay`);
  return out;
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * `'30s'` → 30000. Accepts a number of milliseconds or `<number><ms|s|m|h|d|w>`; a string
 * without a unit is milliseconds, as a number would be (values from environment variables).
 */
export function parseDuration(value: unknown, option: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
  } else if (typeof value === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/.exec(value);
    if (match !== null) return Number(match[1]) * UNITS[match[2] ?? 'ms']!;
  }
  throw new (typeof value === 'number' ? RangeError : TypeError)(
    `Expected \`${option}\` to be milliseconds >= 0 or a duration like '30s', '5m', '2h', got ${describe(value)}`,
  );
}

/** `` `0` (number) `` — the value and its type, for validation messages. */
export function describe(value: unknown): string {
  let shown: string;
  try {
    shown = typeof value === 'string' ? `'${value}'` : String(value);
  } catch {
    shown = Object.prototype.toString.call(value);
  }
  return `\`${shown}\` (${value === null ? 'null' : typeof value})`;
}

function expectType(options: Record<string, unknown>, key: string, type: string): void {
  const value = options[key];
  if (value !== undefined && typeof value !== type) {
    throw new TypeError(`Expected \`${key}\` to be a ${type}, got ${describe(value)}`);
  }
}

function toLogger(log: LogTarget | undefined): (line: string) => void {
  if (log === false) return () => {};
  if (typeof log === 'function') return log;
  const target = log ?? process.stderr;
  if (typeof target.write !== 'function') {
    throw new TypeError(
      `Expected \`log\` to be false, a function or a stream, got ${describe(log)}`,
    );
  }
  return (line) => target.write(`${line}\n`);
}

const KNOWN = new Set([
  'name',
  'key',
  'dir',
  'store',
  'interval',
  'expire',
  'clean',
  'enabled',
  'seed',
  'mathRandom',
  'progress',
  'keep',
  'signals',
  'compression',
  'log',
  'version',
  'migrate',
  'onVersionMismatch',
  'durable',
  'batchDelay',
  'lockWait',
  'retries',
  'retryDelay',
  'shard',
]);

/** Applies defaults and validates; bad values throw TypeError/RangeError naming the option. */
export function resolveOptions(
  options: CheckpointOptions | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
  }
  const raw = options as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown option \`${key}\``);
  }
  expectType(raw, 'name', 'string');
  expectType(raw, 'dir', 'string');
  expectType(raw, 'clean', 'boolean');
  expectType(raw, 'enabled', 'boolean');
  expectType(raw, 'signals', 'boolean');
  expectType(raw, 'migrate', 'function');
  const version = options.version;
  if (version !== undefined && typeof version !== 'string' && !Number.isFinite(version)) {
    throw new TypeError(
      `Expected \`version\` to be a string or a number, got ${describe(version)}`,
    );
  }
  const onVersionMismatch = options.onVersionMismatch ?? 'fresh';
  if (onVersionMismatch !== 'fresh' && onVersionMismatch !== 'error') {
    throw new TypeError(
      `Expected \`onVersionMismatch\` to be 'fresh' or 'error', got ${describe(onVersionMismatch)}`,
    );
  }
  expectType(raw, 'mathRandom', 'boolean');
  expectType(raw, 'progress', 'boolean');
  if (options.name === '')
    throw new TypeError("Expected `name` to be a non-empty string, got `''`");
  const keep = options.keep ?? 2;
  if (!Number.isInteger(keep) || keep < 1 || keep > 1000) {
    throw new RangeError(
      `Expected \`keep\` to be an integer from 1 to 1000, got ${describe(keep)}`,
    );
  }
  const seed = options.seed;
  if (
    seed !== undefined &&
    typeof seed !== 'string' &&
    !(Number.isSafeInteger(seed) && seed >= 0)
  ) {
    throw new TypeError(
      `Expected \`seed\` to be a safe integer >= 0 or a string, got ${describe(seed)}`,
    );
  }
  const compression = options.compression ?? 'brotli';
  if (!['brotli', 'gzip', 'none'].includes(compression)) {
    throw new TypeError(
      `Expected \`compression\` to be 'brotli', 'gzip' or 'none', got ${describe(compression)}`,
    );
  }
  const store = options.store;
  if (
    store !== undefined &&
    (typeof store !== 'object' || store === null || typeof store.write !== 'function')
  ) {
    throw new TypeError(`Expected \`store\` to be a checkpoint store, got ${describe(store)}`);
  }
  const steps = resolveStepOptions(options);
  const envOff = /^(off|0|false|no)$/i.test(env.RESUME ?? '');
  return {
    name: options.name,
    key: options.key,
    dir: options.dir,
    store,
    intervalMs: parseDuration(options.interval ?? '30s', 'interval'),
    expireMs: options.expire === false ? false : parseDuration(options.expire ?? '24h', 'expire'),
    clean: options.clean ?? false,
    enabled: (options.enabled ?? true) && !envOff,
    seed,
    mathRandom: options.mathRandom ?? false,
    progress: options.progress ?? false,
    keep,
    signals: options.signals ?? true,
    compression,
    log: toLogger(options.log),
    version,
    migrate: options.migrate,
    onVersionMismatch,
    durable: steps.durable ?? 'step', // #11.6b
    batchDelayMs: parseDuration(options.batchDelay ?? 100, 'batchDelay'),
    lockWaitMs:
      options.lockWait === undefined ? undefined : parseDuration(options.lockWait, 'lockWait'),
    retries: steps.retries ?? 0,
    retryDelayMs: steps.retryDelay ?? 1000,
    shard: resolveShard(options.shard, env),
  };
}
