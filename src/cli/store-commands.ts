/**
 * `resume list|show|export --store <url>` (#15.4): the local commands over a shared store,
 * read through a {@link StoreReader} (no lock or lease taken).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatAge } from '../durations.js';
import { checkpointFile } from '../inspect.js';
import { formatBytes, table } from './format.js';
import type { StoreReader } from './store-reader.js';

/** `resume list --store`: every checkpoint of the store, newest save first. */
export async function listStore(
  reader: StoreReader,
  json: boolean,
  expire: number,
): Promise<string> {
  const now = Date.now();
  const entries = await Promise.all(
    (await reader.names()).map(async (stored) => {
      const name = stored;
      try {
        const [found, holder] = await Promise.all([reader.stat(name), reader.holder(name)]);
        return { stored, found, holder, error: undefined };
      } catch (err) {
        return { stored, found: undefined, holder: undefined, error: (err as Error).message };
      }
    }),
  );
  const listings = entries
    .map(({ stored, found, holder, error }) => ({
      name: found?.info.name ?? stored,
      location: found?.location ?? `${reader.where}/${stored}`,
      generations: found?.generations ?? 0,
      bytes: found?.bytes ?? 0,
      status:
        found === undefined
          ? error === undefined
            ? 'empty'
            : 'corrupt'
          : now - Date.parse(found.info.savedAt) > expire
            ? 'expired'
            : 'ok',
      ...(found === undefined ? {} : { info: found.info }),
      ...(error === undefined ? {} : { error }),
      holder: holder === undefined ? null : { pid: holder.pid, host: holder.host },
      live: holder?.live ?? false,
    }))
    .sort((a, b) => (b.info?.savedAt ?? '').localeCompare(a.info?.savedAt ?? ''));
  if (json) return JSON.stringify(listings, null, 2);
  if (listings.length === 0) return `no checkpoints in ${reader.where}`;
  const rows = listings.map((l) => [
    l.name,
    l.info?.savedAt ?? '',
    l.info ? formatAge(now - Date.parse(l.info.savedAt)) : '',
    l.info ? String(l.info.saves) : '',
    formatBytes(l.bytes),
    String(l.generations),
    l.status,
    l.holder === null ? '' : `pid ${l.holder.pid} on ${l.holder.host}${l.live ? '' : ' (expired)'}`,
  ]);
  return table(['NAME', 'SAVED', 'AGE', 'SAVES', 'SIZE', 'GENS', 'STATUS', 'HOLDER'], rows);
}

/**
 * Runs `fn` on a folder holding a local copy of the latest generation of `name`, so `show`
 * and `export` read it as they read a local checkpoint (checksum verified first).
 */
export async function withLocalCopy<R>(
  reader: StoreReader,
  name: string,
  fn: (dir: string) => R,
): Promise<R> {
  const bytes = await reader.read(name);
  if (bytes === undefined) throw new Error(`no checkpoint "${name}" in ${reader.where}`);
  const dir = mkdtempSync(join(tmpdir(), 'resume-'));
  try {
    writeFileSync(checkpointFile(dir, name), bytes);
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
