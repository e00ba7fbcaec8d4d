/**
 * Gathering an array job (#15.3): the saved state of every shard, read without taking any
 * shard's lock or lease, so it may run while shards are still being written (each file read
 * is a complete save, checked by its checksum before decoding).
 */
import { type ByteSource, readCheckpoint, unpackCheckpoint } from './codec/container.js';
import { CorruptCheckpointError, MissingShardsError } from './errors.js';
import { defaultDir, findCaller } from './naming.js';
import { describe } from './options.js';
import { MAX_SHARDS, shardName } from './shard.js';
import { fileStore } from './store/file.js';
import type { CheckpointStore } from './store/store.js';

/** Options of {@link collectShards}. */
export interface CollectShardsOptions {
  /** Number of shards of the array job (the `count` every shard was created with). */
  count: number;
  /** Store the shards saved to. @default `fileStore(dir)` */
  store?: CheckpointStore;
  /** Folder of the default file store. @default as `new Checkpoint()` finds it from the calling file */
  dir?: string;
}

/**
 * The saved state of every shard of checkpoint `name` (the name given to each shard's
 * `new Checkpoint`, without the `.shard-…` suffix), in index order: item `i` of the result
 * is what shard `i` saved last. Reads only (no lock, no lease, nothing moved aside, expiry
 * not applied), so it may run while shards are still working; a corrupt latest generation
 * falls back to the previous one, as a restore does.
 *
 * @example
 * const parts = collectShards('sweep', { count: 50 });
 * const best = parts.flatMap((s) => s.results).sort((a, b) => a.loss - b.loss)[0];
 * @throws {MissingShardsError} (`CHECKPOINT_SHARDS_MISSING`) listing the shards with no checkpoint.
 * @throws {CorruptCheckpointError} when no generation of a shard is valid.
 */
export function collectShards<T = unknown>(name: string, options: CollectShardsOptions): T[] {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`Expected \`name\` to be a non-empty string, got ${describe(name)}`);
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `Expected \`options\` to be { count, store?, dir? }, got ${describe(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!['count', 'store', 'dir'].includes(key)) throw new TypeError(`Unknown option \`${key}\``);
  }
  const { count } = options;
  if (typeof count !== 'number') {
    throw new TypeError(`Expected \`count\` to be an integer, got ${describe(count)}`);
  }
  if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS) {
    throw new RangeError(
      `Expected \`count\` to be an integer from 1 to ${MAX_SHARDS}, got ${describe(count)}`,
    );
  }
  if (options.dir !== undefined && typeof options.dir !== 'string') {
    throw new TypeError(`Expected \`dir\` to be a string, got ${describe(options.dir)}`);
  }
  const store =
    options.store ?? fileStore(options.dir ?? defaultDir(findCaller(collectShards).file));
  const states: T[] = [];
  const missing: number[] = [];
  for (let index = 0; index < count; index++) {
    const found = readLatest(store, shardName(name, { index, count }));
    if (found === undefined) missing.push(index);
    else states.push(found.state as T);
  }
  if (missing.length > 0) {
    const names = missing.slice(0, 10).map((index) => shardName(name, { index, count }));
    const more = missing.length > 10 ? `, … (${missing.length - 10} more)` : '';
    throw new MissingShardsError(
      `${missing.length} of ${count} shards of "${name}" have no checkpoint: ${missing.join(', ')} (${names.join(', ')}${more} in ${store.locate(shardName(name, { index: missing[0]!, count }))})`,
      missing,
    );
  }
  return states;
}

/** The state of the newest valid generation of `name`, or undefined when it has none. */
function readLatest(store: CheckpointStore, name: string): { state: unknown } | undefined {
  const generations = store.generations(name);
  let firstError: CorruptCheckpointError | undefined;
  for (const generation of generations) {
    try {
      const source: (ByteSource & { close(): void }) | undefined = store.open?.(name, generation);
      const { envelope } =
        source === undefined
          ? unpackCheckpoint(store.read(name, generation), generation.location)
          : readAndClose(source, generation.location);
      return { state: envelope.state };
    } catch (err) {
      if (!(err instanceof CorruptCheckpointError)) throw err;
      firstError ??= err;
    }
  }
  if (firstError !== undefined) {
    throw new CorruptCheckpointError(
      `${firstError.message}; no valid older generation of "${name}" (${generations.length} checked)`,
      { cause: firstError },
    );
  }
  return undefined;
}

function readAndClose(source: ByteSource & { close(): void }, location: string) {
  try {
    return readCheckpoint(source, location);
  } finally {
    source.close();
  }
}
