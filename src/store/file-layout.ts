/**
 * The names of the file store's files, built and recognised in one place (#16.3): the file
 * store, `inspect`, the lock and the `resume` command all use these, so a change of layout
 * is a change here. `<base>` is `safeFileName(name)` (0.1's `legacySafeFileName` for files
 * not yet adopted). Imports nothing of ours: it is pure string work.
 *
 *   <base>.ckpt                    latest generation
 *   <base>.ckpt.<n>                older generations, n = 1 … 999999
 *   <base>.ckpt.journal-<epoch>    journals of finished steps (`once()`)
 *   <file>.<tag>-<time>            moved aside: tag expired, version or foreign
 *   <file>.tmp-<pid>[-<hex>]       a write in progress (any of the files above, the lock too)
 *   <base>.ckpt.1.tmp-<pid>        the previous latest, staged while a save publishes
 *   <base>.lock                    single-writer lock (plus `.takeover-<id>` and `.stale-<pid>`
 *                                  while it changes hands, see src/lock.ts)
 */
import { randomBytes } from 'node:crypto';

export const EXTENSION = '.ckpt';
const LOCK_EXTENSION = '.lock';
const JOURNAL = '.journal-';

/** `<base>.ckpt`: the latest generation. */
export function latestFile(base: string): string {
  return base + EXTENSION;
}

/** Generation `index` of the checkpoint whose latest file is `latest` (a name or a path). */
export function generationFile(latest: string, index: number): string {
  return index === 0 ? latest : `${latest}.${index}`;
}

/** `<base>.lock`. */
export function lockFile(base: string): string {
  return base + LOCK_EXTENSION;
}

/** The lock next to the latest file `latest` (a name or a path). */
export function lockOfLatest(latest: string): string {
  return lockFile(latest.endsWith(EXTENSION) ? latest.slice(0, -EXTENSION.length) : latest);
}

/** Journal `epoch` of the checkpoint whose latest file is `latest` (a name or a path). */
export function journalFile(latest: string, epoch: number): string {
  return `${latest}${JOURNAL}${epoch}`;
}

/** `file` moved aside under `tag`. */
export function asideFile(file: string, tag: string): string {
  return `${file}.${tag}`;
}

/** A fresh temp name next to `path` for this process: `<path>.tmp-<pid>-<hex>`. */
export function tempFile(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Where a save stages the previous latest `latest` while it publishes the new one. */
export function stagedPrevious(latest: string): string {
  return `${generationFile(latest, 1)}.tmp-${process.pid}`;
}

/** The `<base>` of a latest-generation file name, or undefined for any other entry. */
export function baseOfLatest(entry: string): string | undefined {
  return entry.endsWith(EXTENSION) ? entry.slice(0, -EXTENSION.length) : undefined;
}

/** The generation index of folder entry `entry` for `base` (0 for the latest), if it is one. */
export function generationIndex(entry: string, base: string): number | undefined {
  const latest = latestFile(base);
  if (entry === latest) return 0;
  if (!entry.startsWith(`${latest}.`)) return undefined;
  const rest = entry.slice(latest.length + 1);
  return /^[1-9]\d{0,5}$/.test(rest) ? Number(rest) : undefined;
}

/** The epoch of folder entry `entry` if it is a journal of `base`. */
export function journalEpoch(entry: string, base: string): number | undefined {
  const prefix = journalFile(latestFile(base), 0).slice(0, -1);
  if (!entry.startsWith(prefix)) return undefined;
  const rest = entry.slice(prefix.length);
  return /^(?:0|[1-9]\d{0,15})$/.test(rest) ? Number(rest) : undefined;
}

/** True for a journal of `base` (whatever its epoch), as 0.1 named them too. */
export function isJournalOf(entry: string, base: string): boolean {
  return entry.startsWith(journalFile(latestFile(base), 0).slice(0, -1));
}

/** Files moved aside by the library: `<base>.ckpt[.<n>][.journal-<e>].<tag>-<time>`. */
const ASIDE = /\.ckpt(?:\.\d+)?(?:\.journal-\d+)?\.(?:expired|version|foreign)-/;

export function isAsideFile(entry: string): boolean {
  return ASIDE.test(entry);
}

/** Every file of `base`: its generations, journals, files moved aside and its lock. */
export function isFileOf(entry: string, base: string): boolean {
  const latest = latestFile(base);
  return entry === latest || entry === lockFile(base) || entry.startsWith(`${latest}.`);
}

/**
 * The writer's pid of a leftover of `base`, exactly this name's (not those of a name that
 * extends it): `<base>.ckpt.tmp-<pid>-<hex>` (a save), `<base>.ckpt.1.tmp-<pid>` (a staged
 * generation), `<base>.lock.tmp-<pid>-<hex>`, `<base>.lock.stale-<pid>` and
 * `<base>.lock.takeover-<id>….tmp-<pid>-<hex>` (a lock being taken).
 */
export function leftoverPid(entry: string, base: string): number | undefined {
  const match = new RegExp(
    `^${escapeRegExp(base)}(?:\\.ckpt(?:\\.1)?\\.tmp-(\\d+)(?:-[0-9a-f]+)?|\\.lock(?:\\.takeover-[0-9a-f]{16})*\\.(?:tmp|stale)-(\\d+)(?:-[0-9a-f]+)?)$`,
  ).exec(entry);
  return match === null ? undefined : Number(match[1] ?? match[2]);
}

/** A takeover marker of the lock of `base` (see src/lock.ts). */
export function isTakeoverMarker(entry: string, base: string): boolean {
  return new RegExp(`^${escapeRegExp(base)}\\.lock(?:\\.takeover-[0-9a-f]{16})+$`).test(entry);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
