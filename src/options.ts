/**
 * Options of a Checkpoint: declared once with their defaults, validated once.
 */
import { COMPRESSIONS, type Compression } from './codec/compression.js';
import { resolveShard, type Shard } from './shard.js';
import type { OnceOptions } from './steps.js';
import type { CheckpointStore } from './store/store.js';
import {
  expectInteger,
  expectKnownKeys,
  expectObject,
  expectOneOf,
  expectSeed,
  expectType,
  parseDuration,
  wrongType,
} from './validate.js';

export { describe, parseDuration } from './validate.js';

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

/** The options of one `once()` call (or the checkpoint's defaults for it), by name. */
const STEP_OPTION_NAMES: { readonly [K in keyof OnceOptions]-?: true } = {
  durable: true,
  retries: true,
  retryDelay: true,
};

/** Validates the options of one `once()` call (or the checkpoint's defaults for it). */
export function resolveStepOptions(
  options: { durable?: unknown; retries?: unknown; retryDelay?: unknown },
  where = '',
): OnceOptions {
  const out: OnceOptions = {};
  if (where !== '') expectKnownKeys(expectObject(options), STEP_OPTION_NAMES, where);
  const { durable, retries, retryDelay } = options;
  if (durable !== undefined) out.durable = expectOneOf(`${where}durable`, durable, DURABILITIES);
  if (retries !== undefined) out.retries = expectInteger(`${where}retries`, retries, 0, 1000);
  if (retryDelay !== undefined) out.retryDelay = parseDuration(retryDelay, `${where}retryDelay`);
  return out;
}

const DURABILITIES = ['step', 'batched'] as const;

/**
 * Every option by name (#16.4, as ky's `kyOptionKeys`): the compiler checks it against
 * CheckpointOptions both ways, so an option cannot be added to one and forgotten in the other.
 */
const OPTION_NAMES: { readonly [K in keyof CheckpointOptions]-?: true } = {
  name: true,
  key: true,
  dir: true,
  store: true,
  interval: true,
  expire: true,
  clean: true,
  enabled: true,
  seed: true,
  mathRandom: true,
  progress: true,
  keep: true,
  signals: true,
  compression: true,
  log: true,
  version: true,
  migrate: true,
  onVersionMismatch: true,
  durable: true,
  batchDelay: true,
  lockWait: true,
  retries: true,
  retryDelay: true,
  shard: true,
};

/**
 * The default of every option that has one (the TSDoc `@default`s above say the same). The
 * others are unset unless given: `log` goes to `process.stderr`, `lockWait` is the store's.
 */
const DEFAULTS = {
  interval: '30s',
  expire: '24h',
  clean: false,
  enabled: true,
  mathRandom: false,
  progress: false,
  keep: 2,
  signals: true,
  compression: 'brotli',
  onVersionMismatch: 'fresh',
  durable: 'step', // #11.6b
  batchDelay: '100ms',
  retries: 0,
  retryDelay: '1s',
} as const satisfies CheckpointOptions;

/** `keep`: generations kept by a save (checked here and by the stores' own `write`). */
export function expectKeep(value: unknown): number {
  return expectInteger('keep', value, 1, 1000);
}

function toLogger(log: LogTarget | undefined): (line: string) => void {
  if (log === false) return () => {};
  if (typeof log === 'function') return log;
  const target = log ?? process.stderr;
  if (typeof target.write !== 'function') {
    throw wrongType('log', 'false, a function or a stream', log);
  }
  return (line) => target.write(`${line}\n`);
}

/**
 * Applies defaults and validates, each option once; bad values throw TypeError (wrong type)
 * or RangeError (out of range) naming the option.
 */
export function resolveOptions(
  options: CheckpointOptions | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedOptions {
  const raw = expectObject(options ?? {});
  expectKnownKeys(raw, OPTION_NAMES);
  const o: CheckpointOptions = { ...DEFAULTS, ...definedOnly(raw) };
  const name = expectType<string>('name', o.name, 'string');
  const dir = expectType<string>('dir', o.dir, 'string');
  const clean = expectType<boolean>('clean', o.clean, 'boolean')!;
  const enabled = expectType<boolean>('enabled', o.enabled, 'boolean')!;
  const signals = expectType<boolean>('signals', o.signals, 'boolean')!;
  const migrate = expectType<ResolvedOptions['migrate']>('migrate', o.migrate, 'function');
  const version = o.version;
  if (version !== undefined && typeof version !== 'string' && !Number.isFinite(version)) {
    throw wrongType('version', 'a string or a number', version);
  }
  const onVersionMismatch = expectOneOf('onVersionMismatch', o.onVersionMismatch, [
    'fresh',
    'error',
  ]);
  const mathRandom = expectType<boolean>('mathRandom', o.mathRandom, 'boolean')!;
  const progress = expectType<boolean>('progress', o.progress, 'boolean')!;
  if (name === '') throw new TypeError("Expected `name` to be a non-empty string, got `''`");
  const keep = expectKeep(o.keep);
  const seed = o.seed;
  // The rule of `new Random(seed)`: RangeError for a number out of range (#16.4).
  if (seed !== undefined) expectSeed(seed);
  const compression = expectOneOf('compression', o.compression, COMPRESSIONS);
  const store = o.store;
  if (
    store !== undefined &&
    (typeof store !== 'object' || store === null || typeof store.write !== 'function')
  ) {
    throw wrongType('store', 'a checkpoint store', store);
  }
  const steps = resolveStepOptions(o);
  const envOff = /^(off|0|false|no)$/i.test(env.RESUME ?? '');
  return {
    name,
    key: o.key,
    dir,
    store,
    intervalMs: parseDuration(o.interval, 'interval'),
    expireMs: o.expire === false ? false : parseDuration(o.expire, 'expire'),
    clean,
    enabled: enabled && !envOff,
    seed,
    mathRandom,
    progress,
    keep,
    signals,
    compression,
    log: toLogger(o.log),
    version,
    migrate,
    onVersionMismatch,
    durable: steps.durable!,
    batchDelayMs: parseDuration(o.batchDelay, 'batchDelay'),
    lockWaitMs: o.lockWait === undefined ? undefined : parseDuration(o.lockWait, 'lockWait'),
    retries: steps.retries!,
    retryDelayMs: steps.retryDelay!,
    shard: resolveShard(o.shard, env),
  };
}

/** The entries of `options` that are not `undefined` (an unset option takes its default). */
function definedOnly(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}
