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
 */
export function redisStore(options: RedisStoreOptions = {}): CheckpointStore {
  resolveRedisOptions(options);
  try {
    structuredClone(options);
  } catch (err) {
    throw new TypeError(
      'Expected redisStore() options to be plain data: they are sent to a background thread, which a live ioredis client or a function cannot reach',
      { cause: err },
    );
  }
  const target = {
    module: new URL('./store/redis.js', import.meta.url).href,
    name: 'createRedisStore',
    args: [options],
  };
  return bridgedStore(target, {
    location: (name) => redisLocation(options, name),
    ...(options.cache === undefined ? {} : { cache: options.cache }),
  });
}
