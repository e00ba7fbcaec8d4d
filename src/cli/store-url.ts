/**
 * `--store` URLs of the `resume` command (#15.4): `s3://bucket/prefix` or
 * `redis://[user:password@]host:port/prefix[?db=N]`. Credentials, region and endpoint come from
 * the usual environment (the AWS SDK's chain: `AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, `AWS_REGION`,
 * `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`; `REDIS_USERNAME` / `REDIS_PASSWORD` when the URL
 * has none), plus `--endpoint` for S3-compatible servers.
 */
import type { S3StoreOptions } from '../store/s3-options.js';

/** Where a `--store` URL points. */
export type StoreUrl =
  | { kind: 's3'; options: S3StoreOptions }
  | { kind: 'redis'; url: string; prefix: string; shown: string };

/** Parses `--store` (and `--endpoint`); a malformed one throws TypeError saying what is expected. */
export function parseStoreUrl(
  text: string,
  endpoint: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): StoreUrl {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(
      `Expected \`--store\` to be s3://bucket/prefix or redis://host:port/prefix, got '${text}'`,
    );
  }
  const path = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  if (url.protocol === 's3:') {
    if (url.hostname === '') throw new TypeError(`Expected a bucket in \`--store\` ${text}`);
    const s3Endpoint = endpoint ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
    const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
    const options: S3StoreOptions = { bucket: url.hostname, prefix: path };
    // S3-compatible servers (MinIO, moto, R2) want path-style addressing; AWS needs a region.
    if (s3Endpoint !== undefined) {
      options.endpoint = s3Endpoint;
      options.forcePathStyle = true;
    }
    if (region !== undefined) options.region = region;
    else if (s3Endpoint !== undefined) options.region = 'us-east-1';
    return { kind: 's3', options };
  }
  if (url.protocol === 'redis:' || url.protocol === 'rediss:') {
    if (endpoint !== undefined) throw new TypeError('`--endpoint` is for s3:// stores');
    const db = url.searchParams.get('db');
    if (db !== null && !/^\d+$/.test(db)) {
      throw new TypeError(`Expected \`db\` in \`--store\` to be an integer, got '${db}'`);
    }
    const auth = new URL(`${url.protocol}//${url.host}${db === null ? '' : `/${db}`}`);
    auth.username = url.username || encodeURIComponent(env.REDIS_USERNAME ?? '');
    auth.password = url.password || encodeURIComponent(env.REDIS_PASSWORD ?? '');
    const prefix = path === '' ? 'resume' : path;
    return {
      kind: 'redis',
      url: auth.href,
      prefix,
      shown: `${url.protocol}//${url.host}/${prefix}`,
    };
  }
  throw new TypeError(
    `Expected \`--store\` to be s3://bucket/prefix or redis://host:port/prefix, got '${text}'`,
  );
}
