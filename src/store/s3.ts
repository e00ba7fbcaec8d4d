/**
 * The S3 store: checkpoints in a bucket (AWS S3 or any S3-compatible server that honours
 * conditional writes), used from the background thread. It is the shared object-store
 * protocol (./object-store.ts) over the S3 adapter of its primitives (./s3-bucket.ts):
 * this file only says where each checkpoint's objects live (#16.6).
 *
 *   <prefix>/<name>/…   the objects of checkpoint `name`, laid out as ./object-store.ts says
 */
import { legacySafeFileName } from '../naming.js';
import { objectStore } from './object-store.js';
import type { AsyncCheckpointStore } from './remote.js';
import { S3Bucket } from './s3-bucket.js';
import { normalizeS3Options, type S3Settings, type S3StoreOptions } from './s3-options.js';

export type { S3Credentials, S3StoreOptions } from './s3-options.js';

/**
 * An S3 store for the background thread. The AWS SDK (`@aws-sdk/client-s3`, an optional peer
 * dependency) is imported on first use. `options` are validated here (TypeError/RangeError).
 */
export function createS3Store(options: S3StoreOptions): AsyncCheckpointStore {
  return createS3StoreFromSettings(normalizeS3Options(options));
}

/** The store `s3Store()` has the background thread build: from settings validated already (#16.4). */
export function createS3StoreFromSettings(settings: S3Settings): AsyncCheckpointStore {
  return objectStore(new S3Bucket(settings), {
    folder: (name) => s3Folder(settings, name),
    leaseTtl: settings.leaseTtl,
  });
}

/** `s3://bucket/prefix/name`: where the objects of checkpoint `name` live. */
export function s3Location(settings: S3Settings, name: string): string {
  return `s3://${settings.bucket}/${s3Folder(settings, name)}`;
}

// Still 0.1's folder names (32-bit hash): moving a checkpoint's objects to a new folder is a
// migration of its own. Two names sharing a folder are told apart by the name each file
// holds, which is compared on restore (#11.4).
export function s3Folder({ prefix }: Pick<S3Settings, 'prefix'>, name: string): string {
  const folder = legacySafeFileName(name);
  return prefix === '' ? folder : `${prefix}/${folder}`;
}
