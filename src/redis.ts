/**
 * `resumable-state/redis`: checkpoints in Redis, shared by every machine that reaches the
 * server. Needs the optional peer dependency `ioredis` (`npm install ioredis`).
 *
 * ```ts
 * import { Checkpoint } from 'resumable-state';
 * import { redisStore } from 'resumable-state/redis';
 *
 * const chp = new Checkpoint({ store: redisStore({ url: 'redis://cache:6379' }) });
 * ```
 */
import { bridgedStore } from './store/bridge.js';
import {
  type RedisStoreOptions,
  redisLocation,
  resolveRedisOptions,
} from './store/redis-options.js';
import type { CheckpointStore } from './store/store.js';

export type { RedisStoreOptions } from './store/redis-options.js';

/**
 * A store keeping checkpoints in Redis. The store itself runs in the background thread,
 * so `options` must be plain data (structured-cloneable): pass the connection as `url` or
 * `redis` options, never a live ioredis client or a function such as `retryStrategy`.
 * Bad options throw TypeError or RangeError here, at the call.
 *
 * The single-writer lease is held per store instance, and the background thread builds one
 * instance per distinct settings (the options with their defaults, compared as JSON): two
 * `redisStore()` calls with equal options in one process share it, so two Checkpoints of the
 * same name through them both get the lease (its holder count goes up, and it is released
 * by the last unlock). This matches the file store, which lets one process open a name
 * again. Another process, or a store with other options, is refused with
 * `CheckpointLockedError` while it is held.
 *
 * A server that stops answering fails each command after `redis.commandTimeout` (default
 * 5000 ms): a save then fails with `StoreError` within about that long, whatever its size.
 */
export function redisStore(options: RedisStoreOptions = {}): CheckpointStore {
  const settings = resolveRedisOptions(options);
  try {
    structuredClone(settings);
  } catch (err) {
    throw new TypeError(
      'Expected redisStore() options to be plain data: they are sent to a background thread, which a live ioredis client or a function cannot reach',
      { cause: err },
    );
  }
  const target = {
    module: new URL('./store/redis.js', import.meta.url).href,
    name: 'createRedisStoreFromSettings',
    args: [settings],
  };
  return bridgedStore(target, {
    journal: true,
    location: (name) => redisLocation(settings, name),
    ...(options.cache === undefined ? {} : { cache: options.cache }),
  });
}
