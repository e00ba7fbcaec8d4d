/**
 * The S3 adapter of the object-store primitives (./object-bucket.ts): each method is one or
 * a few SDK calls. Conditional writes are S3's `If-Match` / `If-None-Match: *` (AWS S3 since
 * 2024, and most S3-compatible servers); a refused condition answers 412, or 409 when S3 saw
 * two conditional writes collide.
 */
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ListedObject, ObjectBucket, StoredObject } from './object-bucket.js';
import { COMPLETE_SOCKET_TIMEOUT, createS3Client, loadS3Sdk, type S3Sdk } from './s3-client.js';
import type { S3Settings } from './s3-options.js';
import { uploadObject } from './s3-upload.js';

/** Parts uploaded at once by one write. */
const UPLOAD_CONCURRENCY = 4;

interface Connection {
  sdk: S3Sdk;
  client: S3Client;
  /** For CompleteMultipartUpload only: a longer idle limit (see COMPLETE_SOCKET_TIMEOUT). */
  completer: S3Client;
}

export class S3Bucket implements ObjectBucket {
  readonly #settings: S3Settings;
  #connection: Promise<Connection> | undefined;

  constructor(settings: S3Settings) {
    this.#settings = settings;
  }

  url(key: string): string {
    return `s3://${this.#settings.bucket}/${key}`;
  }

  async get(key: string): Promise<StoredObject | undefined> {
    const { client, sdk } = await this.#connect();
    try {
      const out = await client.send(new sdk.GetObjectCommand(this.#object(key)));
      const body = await out.Body!.transformToByteArray();
      return { body, etag: out.ETag!, metadata: out.Metadata ?? {} };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async putIfMatch(
    key: string,
    body: Uint8Array | string,
    etag: string | undefined,
    contentType?: string,
  ): Promise<string | undefined> {
    const { client, sdk } = await this.#connect();
    const condition = etag === undefined ? { IfNoneMatch: '*' } : { IfMatch: etag };
    try {
      const out = await client.send(
        new sdk.PutObjectCommand({
          ...this.#object(key),
          ...condition,
          Body: body,
          ...(contentType === undefined ? {} : { ContentType: contentType }),
        }),
      );
      return out.ETag!;
    } catch (err) {
      // If-Match on an object deleted meanwhile answers 404.
      if (isRefused(err) || (etag !== undefined && isNotFound(err))) return undefined;
      throw err;
    }
  }

  async put(key: string, body: Uint8Array, metadata?: Record<string, string>): Promise<void> {
    const { client, sdk } = await this.#connect();
    await client.send(
      new sdk.PutObjectCommand({
        ...this.#object(key),
        Body: body,
        ...(metadata === undefined ? {} : { Metadata: metadata }),
      }),
    );
  }

  async list(prefix: string, shallow = false): Promise<ListedObject[]> {
    const { client, sdk } = await this.#connect();
    const found: ListedObject[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await client.send(
        new sdk.ListObjectsV2Command({
          Bucket: this.#settings.bucket,
          Prefix: prefix,
          ...(shallow ? { Delimiter: '/' } : {}),
          ...(ContinuationToken === undefined ? {} : { ContinuationToken }),
        }),
      );
      for (const { Key, LastModified } of page.Contents ?? []) {
        if (Key !== undefined) found.push({ key: Key, modified: LastModified?.getTime() ?? 0 });
      }
      ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (ContinuationToken !== undefined);
    return found;
  }

  async delete(key: string, etag?: string): Promise<void> {
    const { client, sdk } = await this.#connect();
    await client
      .send(
        new sdk.DeleteObjectCommand({
          ...this.#object(key),
          ...(etag === undefined ? {} : { IfMatch: etag }),
        }),
      )
      .catch((err: unknown) => {
        if (!isRefused(err) && !isNotFound(err)) throw err;
      });
  }

  async upload(key: string, parts: readonly Uint8Array[], size: number): Promise<void> {
    const { client, completer, sdk } = await this.#connect();
    await uploadObject(client, sdk, this.#object(key), parts, {
      size,
      partSize: this.#settings.partSize,
      concurrency: UPLOAD_CONCURRENCY,
      completer,
    });
  }

  async download(key: string, path: string): Promise<number> {
    const { client, sdk } = await this.#connect();
    const out = await client.send(new sdk.GetObjectCommand(this.#object(key)));
    const file = createWriteStream(path, { mode: 0o600 });
    await pipeline(out.Body as Readable, file);
    return file.bytesWritten;
  }

  async copy(from: string, to: string): Promise<void> {
    const { client, sdk } = await this.#connect();
    const source = `${this.#settings.bucket}/${from}`;
    await client.send(
      new sdk.CopyObjectCommand({
        ...this.#object(to),
        CopySource: source.split('/').map(encodeURIComponent).join('/'),
      }),
    );
  }

  async abortUploads(prefix: string, leftover: (key: string) => boolean): Promise<void> {
    const { client, sdk } = await this.#connect();
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      const page = await client.send(
        new sdk.ListMultipartUploadsCommand({
          Bucket: this.#settings.bucket,
          Prefix: prefix,
          ...markers,
        }),
      );
      for (const { Key, UploadId } of page.Uploads ?? []) {
        if (Key === undefined || !leftover(Key)) continue;
        await client
          .send(new sdk.AbortMultipartUploadCommand({ ...this.#object(Key), UploadId }))
          .catch((err: unknown) => {
            if (!isNotFound(err)) throw err;
          });
      }
      if (page.IsTruncated !== true) break;
      markers = { KeyMarker: page.NextKeyMarker!, UploadIdMarker: page.NextUploadIdMarker! };
    }
  }

  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    const open = await connection?.catch(() => undefined);
    open?.client.destroy();
    open?.completer.destroy();
  }

  #connect(): Promise<Connection> {
    if (this.#connection === undefined) {
      const connection = loadS3Sdk().then((sdk) => ({
        sdk,
        client: createS3Client(sdk, this.#settings),
        completer: createS3Client(sdk, this.#settings, COMPLETE_SOCKET_TIMEOUT),
      }));
      // Not kept when it failed: installing the package fixes the next call.
      connection.catch(() => {
        if (this.#connection === connection) this.#connection = undefined;
      });
      this.#connection = connection;
    }
    return this.#connection;
  }

  #object(Key: string): { Bucket: string; Key: string } {
    return { Bucket: this.#settings.bucket, Key };
  }
}

function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** A conditional request refused: 412, or 409 when S3 saw two conditional writes collide. */
function isRefused(err: unknown): boolean {
  const code = status(err);
  return code === 412 || code === 409;
}

function isNotFound(err: unknown): boolean {
  return status(err) === 404;
}
