/**
 * Looking at checkpoints from outside the program that wrote them (the `resume` CLI, your
 * own tools): list a folder from metadata alone, read one file whole.
 */
import { closeSync, existsSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { CheckpointInfo } from './checkpoint.js';
import { readHeader } from './codec/container.js';
import { readEnvelope } from './envelope.js';
import { CorruptCheckpointError } from './errors.js';
import { legacySafeFileName, safeFileName } from './naming.js';
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

const HEAD_PROBE = 64 * 1024;

/** Metadata of a checkpoint file, read from its header only (verified by the header CRC). */
export function readCheckpointInfo(file: string): CheckpointInfo {
  // A FIFO or a symlink planted at a checkpoint's name is refused, never waited on (#11.8).
  const { fd } = openRegularFile(file, file, (err) => err as Error);
  try {
    let bytes = Buffer.alloc(HEAD_PROBE);
    let length = readSync(fd, bytes, 0, bytes.byteLength, 0);
    let head = readHeader(bytes.subarray(0, length), file);
    if (head === undefined && length === HEAD_PROBE) {
      bytes = Buffer.alloc(20 + bytes.readUInt32LE(12));
      length = readSync(fd, bytes, 0, bytes.byteLength, 0);
      head = readHeader(bytes.subarray(0, length), file);
    }
    if (head === undefined) {
      throw new CorruptCheckpointError(`Checkpoint file ${file} is corrupt: truncated`);
    }
    return head.header.meta;
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
    if (!entry.endsWith('.ckpt')) continue;
    const file = join(dir, entry);
    const older = entries.filter(
      (e) => e.startsWith(`${entry}.`) && /^\d+$/.test(e.slice(entry.length + 1)),
    );
    let bytes = 0;
    for (const f of [entry, ...older]) bytes += statSync(join(dir, f)).size;
    const listing: CheckpointListing = {
      name: entry.slice(0, -'.ckpt'.length),
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
  const file = join(dir, `${safeFileName(name)}.ckpt`);
  const legacy = join(dir, `${legacySafeFileName(name)}.ckpt`);
  if (legacy === file || existsSync(file) || !existsSync(legacy)) return file;
  try {
    return readCheckpointInfo(legacy).name === name ? legacy : file;
  } catch {
    return file;
  }
}

/** Every file of checkpoint `name` in `dir`: generations, files moved aside, its lock. */
export function checkpointFiles(dir: string, name: string): string[] {
  const base = basename(checkpointFile(dir, name));
  const lock = `${base.slice(0, -'.ckpt'.length)}.lock`;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((e) => e === base || e === lock || e.startsWith(`${base}.`))
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
