/**
 * The load policy (#16.2): which saved generation `restore()` continues from. The newest
 * valid one, falling back to older ones past a corrupt one; a generation holding another
 * checkpoint (another name or key) is never restored as this one (#11.4); expired state is
 * moved aside; state of another schema version is migrated, moved aside or refused.
 */

import type { CheckpointMeta } from './codec/container.js';
import { formatAgeOf } from './durations.js';
import { type Envelope, type LoadedCheckpoint, readEnvelope } from './envelope.js';
import { CorruptCheckpointError, VersionMismatchError } from './errors.js';
import type { ResolvedOptions } from './options.js';
import { printable } from './printable.js';
import type { CheckpointStore, Generation } from './store/store.js';

/** The checkpoint being loaded: who it is, where it is stored, and what it was asked. */
export interface LoadTarget {
  name: string;
  /** Its key as saved in the metadata (`canonicalKey`), if it has one. */
  key: string | undefined;
  location: string;
  store: CheckpointStore;
  options: Pick<ResolvedOptions, 'keep' | 'expireMs' | 'version' | 'migrate' | 'onVersionMismatch'>;
  notice(line: string): void;
}

/**
 * Loads the newest valid generation of this checkpoint; falls back to older ones, moves
 * expired ones aside. Undefined: start fresh. Throws CorruptCheckpointError when no
 * generation is valid, VersionMismatchError when asked to.
 */
export function loadCheckpoint(target: LoadTarget): LoadedCheckpoint | undefined {
  const { name, store, notice, options } = target;
  const generations = store.generations(name);
  let firstError: CorruptCheckpointError | undefined;
  let foreign: { location: string; owner: string } | undefined;
  for (const generation of generations) {
    let loaded: LoadedCheckpoint;
    try {
      loaded = read(store, name, generation);
    } catch (err) {
      if (!(err instanceof CorruptCheckpointError)) throw err;
      firstError ??= err;
      notice(`${err.message}; trying an older generation`);
      continue;
    }
    const owner = otherOwner(target, loaded.meta);
    if (owner !== undefined) {
      foreign ??= { location: generation.location, owner };
      continue;
    }
    if (foreign !== undefined) {
      // Everything is kept aside, and this generation written back as the latest.
      const bytes = store.read(name, generation);
      const moved = store.moveAside(name, `foreign-${timestamp()}`);
      store.write(name, [bytes], options.keep);
      notice(
        `${foreign.location} holds checkpoint ${foreign.owner}, not ${describeOwner(name, target.key)}; falling back to the older generation ${generation.location}, saved again as the latest (every file kept as ${moved.join(', ')})`,
      );
      foreign = undefined;
    } else if (generation.index > 0) {
      notice(`fell back to an older generation of "${name}" (${generation.location})`);
    }
    const { meta } = loaded;
    // Steps journaled since the save are as fresh as their journal.
    const written = store.journal?.lastModified(name) ?? 0;
    const age = Date.now() - Math.max(Date.parse(meta.savedAt), written);
    if (options.expireMs !== false && age > options.expireMs) {
      const moved = store.moveAside(name, `expired-${timestamp()}`);
      notice(
        `saved state of "${name}" from ${formatAgeOf(meta.savedAt)} ago has expired; starting fresh (old files kept as ${moved.join(', ')})`,
      );
      return undefined;
    }
    const wanted = options.version;
    if (wanted !== undefined && meta.version !== wanted) {
      return onOtherVersion(target, loaded, wanted);
    }
    return loaded;
  }
  if (foreign !== undefined) {
    const moved = store.moveAside(name, `foreign-${timestamp()}`);
    notice(
      `${foreign.location} holds checkpoint ${foreign.owner}, not ${describeOwner(name, target.key)}; starting fresh (its files kept as ${moved.join(', ')})`,
    );
    return undefined;
  }
  if (firstError !== undefined) {
    throw new CorruptCheckpointError(
      `${firstError.message}; no valid older generation of "${name}" (${generations.length} checked)`,
      { cause: firstError },
    );
  }
  return undefined;
}

/** The checkpoint a file holds when it is not this one (its name or key differs). */
function otherOwner(target: LoadTarget, meta: CheckpointMeta): string | undefined {
  if (meta.name === target.name && meta.key === target.key) return undefined;
  return describeOwner(meta.name, meta.key);
}

/** Saved state of another schema version: migrate it, start fresh, or fail, as asked. */
function onOtherVersion(
  { name, location, store, options, notice }: LoadTarget,
  { meta, envelope }: LoadedCheckpoint,
  wanted: string | number,
): LoadedCheckpoint | undefined {
  const from = meta.version;
  const shown = (v: string | number | undefined) => (v === undefined ? 'none' : JSON.stringify(v));
  const { migrate } = options;
  if (migrate !== undefined) {
    notice(`migrating "${name}" from version ${shown(from)} to ${shown(wanted)}`);
    const migrated: Envelope = { ...envelope, state: migrate(envelope.state, from) as object };
    return { meta, envelope: migrated };
  }
  if (options.onVersionMismatch === 'error') {
    throw new VersionMismatchError(
      `Checkpoint "${name}" was saved by version ${shown(from)} of your state; this code is version ${shown(wanted)}. Pass migrate(old, fromVersion) to convert it, or onVersionMismatch: 'fresh' to start over (${location})`,
    );
  }
  const moved = store.moveAside(name, `version-${safeTag(from)}-${timestamp()}`);
  notice(
    `saved state of "${name}" is version ${shown(from)}, this code is version ${shown(wanted)} and has no migrate(); starting fresh (old files kept as ${moved.join(', ')})`,
  );
  return undefined;
}

function read(store: CheckpointStore, name: string, generation: Generation): LoadedCheckpoint {
  const source = store.open?.(name, generation);
  if (source === undefined) {
    return readEnvelope(store.read(name, generation), generation.location);
  }
  try {
    return readEnvelope(source, generation.location);
  } finally {
    source.close();
  }
}

/** A checkpoint's name and key, as a notice shows them (escaped: they may come from a file). */
function describeOwner(name: unknown, key: unknown): string {
  const text = (v: unknown) => printable(typeof v === 'string' ? v : String(v));
  return key === undefined ? `"${text(name)}"` : `"${text(name)}" key ${text(key)}`;
}

/** `20260102T000001000Z`: a time for file names. */
function timestamp(): string {
  return new Date().toISOString().replace(/[-:.]/g, '');
}

/** A version as a file-name fragment. */
function safeTag(version: string | number | undefined): string {
  return String(version ?? 'none')
    .replace(/[^A-Za-z0-9_-]/g, '_')
    .slice(0, 40);
}
