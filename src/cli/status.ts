/**
 * `resume status <name>` (#15.4): progress of an array job across its shards, from each
 * shard's metadata (items done and total of its loops, last save) and its lock or lease,
 * without decoding any state and without taking any lock. `--watch` refreshes it.
 *
 * States: `running` (its lock or lease is live), `missing` (no checkpoint yet), `done` (not
 * running, and its last save had every item of its loops done: the total is known and
 * reached; call `save()` after the last loop so the last save says so), `stopped` otherwise
 * (killed, preempted, waiting to be restarted, or finished without a final save).
 */

import { formatAge } from '../durations.js';
import { shardName } from '../shard.js';
import { table } from './format.js';
import type { Holder, StoreReader } from './store-reader.js';

/** One shard, as `--json` gives it. */
export interface ShardStatus {
  index: number;
  count: number;
  /** Items of its loops done at its last save (0 when missing). */
  done: number;
  /** Their total when known (ranges, arrays, finished iterables), else null. */
  total: number | null;
  savedAt: string | null;
  createdAt: string | null;
  holder: { pid: number; host: string; since?: string } | null;
  live: boolean;
  state: 'running' | 'stopped' | 'done' | 'missing';
}

/** The whole array, as `--json` gives it. */
export interface ArrayStatus {
  name: string;
  where: string;
  shards: ShardStatus[];
  done: number;
  /** Sum of the shards' totals; null while any is unknown (or a shard is missing). */
  total: number | null;
  /** Items per second over the array (see {@link rateOf}); null when not measurable yet. */
  rate: number | null;
  /** Seconds left at that rate; null when the total or the rate is unknown. */
  eta: number | null;
}

/** How often `--watch` refreshes. */
export const WATCH_INTERVAL_MS = 2000;

/** The shard count of `name` in the store: the one most of its stored shards have. */
async function discoverCount(reader: StoreReader, name: string): Promise<number | undefined> {
  const base = reader.key(name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^${base}\\.shard-(\\d+)-of-(\\d+)$`);
  const found = new Map<number, number>();
  for (const stored of await reader.names()) {
    const match = pattern.exec(stored);
    if (match !== null) found.set(Number(match[2]), (found.get(Number(match[2])) ?? 0) + 1);
  }
  let best: number | undefined;
  for (const [count, n] of found) {
    if (best === undefined || n > found.get(best)! || (n === found.get(best) && count > best)) {
      best = count;
    }
  }
  return best;
}

async function shardStatus(
  reader: StoreReader,
  name: string,
  index: number,
  count: number,
): Promise<ShardStatus> {
  const full = shardName(name, { index, count });
  const [stored, holder] = await Promise.all([reader.stat(full), reader.holder(full)]);
  const info = stored?.info;
  const progress = info?.progress;
  const total = progress?.total ?? null;
  const done = progress?.done ?? 0;
  const live = holder?.live ?? false;
  // A live holder that has not saved yet is running too.
  const state = live
    ? 'running'
    : info === undefined
      ? 'missing'
      : total !== null && done >= total
        ? 'done'
        : 'stopped';
  return {
    index,
    count,
    done,
    total,
    savedAt: info?.savedAt ?? null,
    createdAt: info?.createdAt ?? null,
    holder: holder === undefined ? null : owner(holder),
    live,
    state,
  };
}

function owner({ pid, host, since }: Holder): ShardStatus['holder'] {
  return since === undefined ? { pid, host } : { pid, host, since };
}

/**
 * Items per second: over the watch so far when it saw progress, else from the metadata
 * (items done over the time from the first shard's creation to the latest save, downtime
 * included).
 */
function rateOf(
  shards: ShardStatus[],
  done: number,
  since?: { at: number; done: number },
): number | null {
  if (since !== undefined && done > since.done && Date.now() > since.at) {
    return (done - since.done) / ((Date.now() - since.at) / 1000);
  }
  const created = shards.flatMap((s) => (s.createdAt === null ? [] : [Date.parse(s.createdAt)]));
  const saved = shards.flatMap((s) => (s.savedAt === null ? [] : [Date.parse(s.savedAt)]));
  if (created.length === 0 || done === 0) return null;
  const span = (Math.max(...saved) - Math.min(...created)) / 1000;
  return span > 0 ? done / span : null;
}

/** The status of every shard of `name` (count given, or found among the stored names). */
export async function arrayStatus(
  reader: StoreReader,
  name: string,
  count?: number,
  since?: { at: number; done: number },
): Promise<ArrayStatus> {
  const shards = count ?? (await discoverCount(reader, name));
  if (shards === undefined) {
    throw new Error(
      `no shards of "${name}" in ${reader.where} (looked for ${name}.shard-<index>-of-<count>; pass --count <n> to list missing ones)`,
    );
  }
  const list = await Promise.all(
    Array.from({ length: shards }, (_, index) => shardStatus(reader, name, index, shards)),
  );
  const done = list.reduce((sum, s) => sum + s.done, 0);
  const total = list.some((s) => s.total === null)
    ? null
    : list.reduce((sum, s) => sum + s.total!, 0);
  const rate = rateOf(list, done, since);
  const eta = total === null || rate === null ? null : Math.max(0, total - done) / rate;
  return { name, where: reader.where, shards: list, done, total, rate, eta };
}

const fraction = (done: number, total: number | null) =>
  total === null ? `${done}/?` : `${done}/${total}`;

/** The table of `resume status`. */
export function formatStatus(status: ArrayStatus, now = Date.now()): string {
  const rows = status.shards.map((s) => [
    String(s.index),
    s.savedAt === null ? '-' : fraction(s.done, s.total),
    s.savedAt ?? '-',
    s.savedAt === null ? '-' : formatAge(now - Date.parse(s.savedAt)),
    s.holder === null ? '-' : `pid ${s.holder.pid} on ${s.holder.host}`,
    s.holder === null ? '-' : s.live ? 'live' : 'expired',
    s.state,
  ]);
  const { done, total, rate, eta } = status;
  const counts = ['running', 'stopped', 'done', 'missing']
    .map((state) => [state, status.shards.filter((s) => s.state === state).length] as const)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
  const progress =
    total === null
      ? `${done} done, total unknown for ${status.shards.filter((s) => s.total === null).length} of ${status.shards.length} shards`
      : `${done}/${total} (${total === 0 ? '100.0' : ((100 * done) / total).toFixed(1)}%)`;
  const speed = rate === null ? 'rate unknown' : `${rate.toFixed(rate < 10 ? 2 : 0)} items/s`;
  const left =
    eta === null ? 'ETA unknown' : done === total ? 'finished' : `ETA ${formatAge(eta * 1000)}`;
  return [
    `"${status.name}": ${status.shards.length} shards in ${status.where}`,
    table(['SHARD', 'DONE', 'SAVED', 'AGE', 'HOLDER', 'LEASE', 'STATE'], rows),
    `total  ${progress}, ${speed}, ${left} (${counts})`,
  ].join('\n');
}

/**
 * `resume status`: once (the text or JSON is returned), or with `watch` every
 * {@link WATCH_INTERVAL_MS} until the process is interrupted (written to `write`; never returns).
 */
export async function statusCommand(
  reader: StoreReader,
  name: string,
  options: { json: boolean; watch: boolean; count?: number | undefined },
  write: (text: string) => void,
): Promise<string> {
  const render = (status: ArrayStatus) =>
    options.json ? JSON.stringify(status, null, options.watch ? 0 : 2) : formatStatus(status);
  if (!options.watch) return render(await arrayStatus(reader, name, options.count));
  const first = await arrayStatus(reader, name, options.count);
  const since = { at: Date.now(), done: first.done };
  const tty = process.stdout.isTTY === true && !options.json;
  let status = first;
  for (;;) {
    // A terminal is redrawn in place; a pipe gets one report (JSON: one line) per refresh.
    write(`${tty ? '\x1b[H\x1b[2J' : ''}${render(status)}\n`);
    await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS));
    status = await arrayStatus(reader, name, options.count ?? first.shards.length, since);
  }
}
