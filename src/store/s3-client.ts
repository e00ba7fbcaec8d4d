/**
 * Loads the optional AWS SDK on first use and builds a client whose failures stay bounded:
 * three attempts, short connection and idle timeouts, so a save against an unreachable
 * server fails within seconds instead of hanging the background thread.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { StoreError } from '../errors.js';
import type { S3Settings } from './s3-options.js';

/** The SDK module, for its command classes. */
export type S3Sdk = typeof import('@aws-sdk/client-s3');

const PACKAGE = '@aws-sdk/client-s3';
/** SDK attempts per request (the first and two retries). */
const MAX_ATTEMPTS = 3;
/** Connecting longer than this fails the attempt. */
const CONNECTION_TIMEOUT = 2_000;
/**
 * A socket idle this long (nothing sent or received) fails the attempt. An idle limit, not a
 * total one (the SDK's `requestTimeout`, which only warns unless told to throw): uploading a
 * large part over a slow link may take long, but never sits silent.
 */
const SOCKET_TIMEOUT = 3_000;
/**
 * The idle limit of CompleteMultipartUpload, which legitimately says nothing while the server
 * assembles the object: S3 itself sends spaces meanwhile, but moto stayed silent over 3 s
 * for 100 MB on a busy machine, and the 3 s limit then retried a commit that had succeeded,
 * failing the save (an HTML error page from moto: the upload was gone) (#17.4).
 */
export const COMPLETE_SOCKET_TIMEOUT = 60_000;

let loading: Promise<S3Sdk> | undefined;

/** Imports `@aws-sdk/client-s3`; a `StoreError` saying how to install it when it is missing. */
export function loadS3Sdk(): Promise<S3Sdk> {
  loading ??= import(PACKAGE).catch((err: unknown) => {
    loading = undefined;
    throw new StoreError(
      `resumable-state/s3 needs the optional package ${PACKAGE}: npm install ${PACKAGE}`,
      { cause: err },
    );
  }) as Promise<S3Sdk>;
  return loading;
}

/** A client for `settings`, failing a request idle `socketTimeout` ms; the caller destroys it. */
export function createS3Client(
  sdk: S3Sdk,
  settings: S3Settings,
  socketTimeout = SOCKET_TIMEOUT,
): S3Client {
  return new sdk.S3Client({
    ...(settings.region === undefined ? {} : { region: settings.region }),
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    ...(settings.forcePathStyle === undefined ? {} : { forcePathStyle: settings.forcePathStyle }),
    ...(settings.credentials === undefined ? {} : { credentials: settings.credentials }),
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: { connectionTimeout: CONNECTION_TIMEOUT, socketTimeout },
    // Checksums only where S3 demands them: several S3-compatible servers reject the
    // flexible checksums the SDK sends by default since 3.729, and the container carries its
    // own CRC-32 over every byte, checked on every restore.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
