/**
 * `resumable-state/s3`: checkpoints in an S3 bucket.
 *
 * ```ts
 * import { Checkpoint } from 'resumable-state';
 * import { s3Store } from 'resumable-state/s3';
 * const chp = new Checkpoint({ store: s3Store({ bucket: 'my-bucket', prefix: 'runs' }) });
 * ```
 *
 * Needs the optional peer dependency `@aws-sdk/client-s3`, imported only by the background
 * thread that writes to the bucket.
 */
import { bridgedStore } from './store/bridge.js';
import { s3Location } from './store/s3.js';
import { normalizeS3Options, type S3StoreOptions } from './store/s3-options.js';
import type { CheckpointStore } from './store/store.js';

export type { S3Credentials, S3StoreOptions } from './store/s3-options.js';

/**
 * A store keeping checkpoints in S3 (or an S3-compatible server). Options are validated here,
 * at the call, with a TypeError or RangeError naming the option.
 */
export function s3Store(options: S3StoreOptions): CheckpointStore {
  const settings = normalizeS3Options(options);
  return bridgedStore(
    {
      module: new URL('./store/s3.js', import.meta.url).href,
      name: 'createS3StoreFromSettings',
      args: [settings],
    },
    {
      location: (name) => s3Location(settings, name),
      journal: true,
      ...(options.cache === undefined ? {} : { cache: options.cache }),
    },
  );
}
