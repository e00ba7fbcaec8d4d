/**
 * The few primitives the shared object-store protocol (./object-store.ts) needs from a
 * bucket (#16.6): get, put-if-match, list, delete, upload, plus download, copy and the
 * aborting of unfinished uploads. S3 (./s3-bucket.ts), GCS (generation preconditions) and
 * Azure Blob (ETag conditions) all offer them, so a store for one of them is an adapter of
 * these methods and nothing else: leases, fencing, manifests, journals and sweeping are
 * written once, in the protocol.
 *
 * Keys are full object keys (`<prefix>/<folder>/<file>`). Errors of the service are thrown as
 * they are: the protocol wraps them in StoreError with the original as `cause`.
 */

/** An object as read: its bytes, the version tag a conditional write must match, metadata. */
export interface StoredObject {
  body: Uint8Array;
  /** The service's version tag of these bytes (S3/Azure: ETag; GCS: generation). */
  etag: string;
  /** User metadata stored with the object. */
  metadata: Record<string, string>;
}

/** One object of a listing. */
export interface ListedObject {
  key: string;
  /** Last modification, ms since the epoch (0 when the service does not say). */
  modified: number;
}

export interface ObjectBucket {
  /** `s3://bucket/key`: a key's address, for messages and locations. */
  url(key: string): string;
  /** The object at `key`, or undefined when there is none. */
  get(key: string): Promise<StoredObject | undefined>;
  /**
   * Writes `body` at `key` only if the object there still has version tag `etag` or, with
   * `etag` undefined, does not exist. Returns the new tag, or undefined when the condition
   * failed (someone else wrote or deleted it meanwhile). This is the one atomic step of the
   * protocol: manifests and leases change only through it.
   */
  putIfMatch(
    key: string,
    body: Uint8Array | string,
    etag: string | undefined,
    contentType?: string,
  ): Promise<string | undefined>;
  /** Writes `body` at `key` unconditionally, with user `metadata`. */
  put(key: string, body: Uint8Array, metadata?: Record<string, string>): Promise<void>;
  /**
   * Every object whose key starts with `prefix`, in any order; with `shallow`, not those
   * below a further `/` (the objects of a name nested below this one).
   */
  list(prefix: string, shallow?: boolean): Promise<ListedObject[]>;
  /**
   * Deletes `key` (only while it still has version tag `etag`, when given). Resolves when
   * the object is gone, was never there, or has another tag now.
   */
  delete(key: string, etag?: string): Promise<void>;
  /** Uploads `parts` (concatenated, `size` bytes in all) as the object `key`. */
  upload(key: string, parts: readonly Uint8Array[], size: number): Promise<void>;
  /** Streams the object `key` into a new file at `path`; resolves to the bytes written. */
  download(key: string, path: string): Promise<number>;
  /** Copies `from` to `to` inside the service (no bytes through this process). */
  copy(from: string, to: string): Promise<void>;
  /** Aborts the unfinished uploads under `prefix` whose key `leftover` accepts. */
  abortUploads(prefix: string, leftover: (key: string) => boolean): Promise<void>;
  /** Closes connections. */
  close(): Promise<void>;
}
