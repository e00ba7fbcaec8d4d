/**
 * Looking at checkpoints from outside the program that wrote them (the `resume` CLI, your
 * own tools): list a folder from metadata alone, read one file whole.
 */
import { closeSync, existsSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { CheckpointInfo } from './checkpoint.js';
import { readHead } from './codec/layout.js';
import { readEnvelope } from './envelope.js';
import { legacySafeFileName, safeFileName } from './naming.js';
import { baseOfLatest, generationIndex, isFileOf, latestFile } from './store/file-layout.js';
import { openRegularFile, readRegularFile } from './store/regular-file.js';

/** One checkpoint of a folder, as `listCheckpoints` sees it. */
export interface CheckpointListing {
  /** The checkpoint's name (from its metadata; the file name when it cannot be read). */
  name: string;
  /** Path of its latest generation. */
  file: string;
  /** Generations on disk, the latest included. */
  generations: number;
  /** Bytes on disk of all its generations. */
  bytes: number;
  /** Its metadata; absent when the file is corrupt. */
  info?: CheckpointInfo;
  /** Why the metadata could not be read. */
  error?: string;
}

/** Metadata of a checkpoint file, read from its header only (verified by the header CRC). */
export function readCheckpointInfo(file: string): CheckpointInfo {
  // A FIFO or a symlink planted at a checkpoint's name is refused, never waited on (#11.8).
  const { fd, size } = openRegularFile(file, file, (err) => err as Error);
  try {
    const read = (end: number) => {
      const bytes = Buffer.alloc(end);
      return bytes.subarray(0, readSync(fd, bytes, 0, end, 0));
    };
    return readHead(read, file, size).header.meta;
  } finally {
    closeSync(fd);
  }
}

/** Every checkpoint in `dir`, newest save first, from metadata alone (payloads are not read). */
export function listCheckpoints(dir: string): CheckpointListing[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const listings: CheckpointListing[] = [];
  for (const entry of entries) {
    const base = baseOfLatest(entry);
    if (base === undefined) continue;
    const file = join(dir, entry);
    const older = entries.filter((e) => (generationIndex(e, base) ?? 0) > 0);
    let bytes = 0;
    for (const f of [entry, ...older]) bytes += statSync(join(dir, f)).size;
    const listing: CheckpointListing = {
      name: base,
      file,
      generations: 1 + older.length,
      bytes,
    };
    try {
      listing.info = readCheckpointInfo(file);
      listing.name = listing.info.name;
    } catch (err) {
      listing.error = (err as Error).message;
    }
    listings.push(listing);
  }
  return listings.sort((a, b) => (b.info?.savedAt ?? '').localeCompare(a.info?.savedAt ?? ''));
}

/**
 * The latest file of checkpoint `name` in `dir` (names are made file-safe as the library
 * does); a file saved by 0.1 under its older file name when only that one holds `name` (#11.4).
 */
export function checkpointFile(dir: string, name: string): string {
  const file = join(dir, latestFile(safeFileName(name)));
  const legacy = join(dir, latestFile(legacySafeFileName(name)));
  if (legacy === file || existsSync(file) || !existsSync(legacy)) return file;
  try {
    return readCheckpointInfo(legacy).name === name ? legacy : file;
  } catch {
    return file;
  }
}

/** Every file of checkpoint `name` in `dir`: generations, files moved aside, its lock. */
export function checkpointFiles(dir: string, name: string): string[] {
  const base = baseOfLatest(basename(checkpointFile(dir, name)))!;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((e) => isFileOf(e, base))
    .sort()
    .map((e) => join(dir, e));
}

/** A whole checkpoint file, verified and decoded: its metadata and the envelope it holds. */
export function readCheckpointFile(file: string): {
  info: CheckpointInfo;
  state: unknown;
  random: unknown;
  loops: unknown;
  tracked: unknown;
} {
  const { meta, envelope } = readEnvelope(
    readRegularFile(file, file, (err) => err as Error),
    file,
  );
  return {
    info: meta,
    state: envelope.state,
    random: envelope.random,
    loops: envelope.loops,
    tracked: envelope.tracked,
  };
}
