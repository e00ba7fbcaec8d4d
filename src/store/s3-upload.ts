/**
 * Uploads a checkpoint, given as the container's parts, as one S3 object: a single PUT when it
 * fits in one part, otherwise a multipart upload with a few parts in flight. Parts are views
 * of the caller's buffers; only a part that straddles two of them is copied, so the extra
 * memory is at most `concurrency × partSize` whatever the checkpoint's size.
 *
 * Not `@aws-sdk/lib-storage`: its `Upload` takes one body, so the container's parts would go
 * in as a stream, which it copies byte for byte into part buffers; and it would be a second
 * optional package (pinned to the client's version) for what is four commands here.
 */
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import type { S3Sdk } from './s3-client.js';

/** S3 allows at most this many parts in one upload. */
const MAX_PARTS = 10_000;

export interface UploadTarget {
  Bucket: string;
  Key: string;
}

/** Stores `parts` (concatenated, `size` bytes in all) at `target`; an incomplete upload is aborted. */
export async function uploadObject(
  client: S3Client,
  sdk: S3Sdk,
  target: UploadTarget,
  parts: readonly Uint8Array[],
  options: { size: number; partSize: number; concurrency: number; completer?: S3Client },
): Promise<void> {
  const { size, concurrency } = options;
  if (size <= options.partSize) {
    const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    await client.send(new sdk.PutObjectCommand({ ...target, Body: body, ContentLength: size }));
    return;
  }
  const partSize = Math.max(options.partSize, Math.ceil(size / MAX_PARTS));
  const { UploadId } = await client.send(new sdk.CreateMultipartUploadCommand(target));
  const chunks = slices(parts, partSize);
  const done: CompletedPart[] = [];
  let failure: { error: unknown } | undefined;
  let partNumber = 0;
  // Workers pull the next slice only when they are free, so slices are made lazily.
  const worker = async () => {
    while (failure === undefined) {
      const next = chunks.next();
      if (next.done) return;
      const PartNumber = ++partNumber;
      try {
        const Body = next.value;
        const { ETag } = await client.send(
          new sdk.UploadPartCommand({ ...target, UploadId, PartNumber, Body }),
        );
        done.push({ PartNumber, ETag });
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  try {
    if (failure !== undefined) throw failure.error;
    done.sort((a, b) => a.PartNumber! - b.PartNumber!);
    const complete = new sdk.CompleteMultipartUploadCommand({
      ...target,
      UploadId,
      MultipartUpload: { Parts: done },
    });
    await (options.completer ?? client).send(complete).catch(async (err: unknown) => {
      // A commit whose answer was lost may have succeeded, and a retry of it then fails (the
      // upload is gone). The key is this generation's alone, so an object there of our size
      // is our commit (#17.4); its bytes are checked against the CRC on every restore.
      const head = await client.send(new sdk.HeadObjectCommand(target)).catch(() => undefined);
      if (head?.ContentLength !== size) throw err;
    });
  } catch (err) {
    // Best effort: what is left is aborted by the next cleanup().
    await client
      .send(new sdk.AbortMultipartUploadCommand({ ...target, UploadId }))
      .catch(() => undefined);
    throw err;
  }
}

/** `parts` cut into consecutive slices of `size` bytes (the last may be shorter). */
export function* slices(parts: readonly Uint8Array[], size: number): Generator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for (const part of parts) {
    let at = 0;
    while (at < part.byteLength) {
      const take = Math.min(size - pendingBytes, part.byteLength - at);
      const view = part.subarray(at, at + take);
      at += take;
      if (pendingBytes === 0 && take === size) {
        yield view; // a whole slice inside one part: no copy
        continue;
      }
      pending.push(view);
      pendingBytes += take;
      if (pendingBytes === size) {
        yield Buffer.concat(pending, size);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield pending.length === 1 ? pending[0]! : Buffer.concat(pending);
}
