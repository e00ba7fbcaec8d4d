/**
 * The metadata of a checkpoint's saves (#16.2): what the next save records (who saved what,
 * when, where, how far it got) and the metadata of the last save or load, which
 * `chp.info` shows.
 */
import { hostname } from 'node:os';
import type { CheckpointMeta } from './codec/container.js';
import type { Shard } from './shard.js';

const LIBRARY = 'resumable-state@0.1.0';

/** A save's metadata before the writer fills in sizes and codec. */
export type SaveMeta = Omit<CheckpointMeta, 'rawBytes' | 'storedBytes' | 'codec'>;

/** What every save of a checkpoint says about it. */
export interface SaveIdentity {
  name: string;
  source: { file?: string; function?: string };
  key: string | undefined;
  version: string | number | undefined;
  shard: Shard | undefined;
}

/** Sizes a background write reports once it has landed, with the number of its snapshot. */
type WriteResult = { seq: number; rawBytes: number; storedBytes: number; codec: string };

export class SaveHistory {
  #info: CheckpointMeta | undefined;
  /** True when #info describes a snapshot handed to the background writer. */
  #infoFromWriter = false;
  /** Sequence number of the snapshot #info describes, when handed to the writer. */
  #infoSeq = 0;
  #createdAt: string | undefined;
  #saves = 0;

  constructor(readonly identity: SaveIdentity) {}

  /** Saves so far, counting those of earlier runs. */
  get saves(): number {
    return this.#saves;
  }

  /** Metadata of the loaded or last saved snapshot; sizes once its background write landed. */
  info(result: WriteResult | undefined): CheckpointMeta | undefined {
    if (this.#infoFromWriter && result?.seq === this.#infoSeq && this.#info !== undefined) {
      const { seq: _, ...sizes } = result;
      return { ...this.#info, ...sizes };
    }
    return this.#info;
  }

  /** `restore()` continues from `meta`. */
  loaded(meta: CheckpointMeta): void {
    this.#info = meta;
    this.#createdAt = meta.createdAt;
    this.#saves = meta.saves;
  }

  /** The metadata of the next save. */
  next(seed: number | string, progress: CheckpointMeta['progress']): SaveMeta {
    const { name, source, key, version, shard } = this.identity;
    const now = new Date().toISOString();
    const meta: SaveMeta = {
      name,
      source,
      createdAt: this.#createdAt ?? now,
      savedAt: now,
      saves: this.#saves + 1,
      seed,
      library: LIBRARY,
      node: process.version,
      runtime: runtimeName(),
      host: hostname(),
      pid: process.pid,
    };
    if (key !== undefined) meta.key = key;
    if (version !== undefined) meta.version = version;
    // Read by `resume status` from the metadata alone (#15.4).
    if (shard !== undefined) meta.shard = { ...shard };
    if (progress !== undefined) meta.progress = progress;
    return meta;
  }

  /** `meta` was handed to the background writer as snapshot `seq`. */
  submitted(meta: SaveMeta, seq: number): void {
    this.#saved({ ...meta, rawBytes: 0, storedBytes: 0, codec: '' });
    this.#infoSeq = seq;
    this.#infoFromWriter = true;
  }

  /** `meta` was written on this thread. */
  written(meta: CheckpointMeta): void {
    this.#saved(meta);
    this.#infoFromWriter = false;
  }

  /** `clear()`: nothing is saved any more. */
  clear(): void {
    this.#info = undefined;
    this.#saves = 0;
    this.#createdAt = undefined;
  }

  #saved(meta: CheckpointMeta): void {
    this.#info = meta;
    this.#createdAt = meta.createdAt;
    this.#saves = meta.saves;
  }
}

/**
 * What runs this process, as a person reads it: `Node v20.20.2`, `Bun 1.4.5`, `Deno 2.9.6`.
 * Bun and Deno report a Node version of their own in `process.version` (Bun 1.4.5 says
 * v26.3.0), so `node` alone would name the wrong runtime.
 */
export function runtimeName(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun !== undefined) return `Bun ${versions.bun}`;
  if (versions.deno !== undefined) return `Deno ${versions.deno}`;
  return `Node ${process.version}`;
}
