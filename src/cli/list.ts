/** `resume list`: the checkpoints of a folder, from their headers. */

import { formatAge } from '../durations.js';
import { type CheckpointListing, listCheckpoints } from '../inspect.js';
import { printable } from '../printable.js';
import { holder, lockOf } from './files.js';
import { formatBytes, table } from './format.js';
import { toJson } from './output.js';

export function list(dir: string, json: boolean, expire: number): string {
  const now = Date.now();
  const listings = listCheckpoints(dir).map((l) => ({ ...l, pid: holder(lockOf(l.file)) }));
  const status = (l: CheckpointListing & { pid: number | undefined }) =>
    l.pid !== undefined
      ? 'in use'
      : l.info === undefined
        ? 'corrupt'
        : now - Date.parse(l.info.savedAt) > expire
          ? 'expired'
          : 'ok';
  if (json) {
    return toJson(
      listings.map(({ pid, ...l }) => ({
        ...l,
        status: status({ ...l, pid }),
        ...(pid === undefined ? {} : { pid }),
      })),
    );
  }
  if (listings.length === 0) return `no checkpoints in ${dir}`;
  const rows = listings.map((l) => {
    const info = l.info;
    const source = info?.source.file
      ? `${info.source.function ?? '(top level)'} ${info.source.file}`
      : '';
    return [
      l.name,
      info?.savedAt ?? '',
      info ? formatAge(now - Date.parse(info.savedAt)) : '',
      info ? String(info.saves) : '',
      formatBytes(l.bytes),
      String(l.generations),
      l.pid === undefined ? status(l) : `in use (pid ${l.pid})`,
      info === undefined ? (l.error ?? '') : source,
    ].map((cell) => printable(String(cell)));
  });
  return table(['NAME', 'SAVED', 'AGE', 'SAVES', 'SIZE', 'GENS', 'STATUS', 'SOURCE'], rows);
}
