import { StoreError } from '../errors.js';
import { JOURNAL_MAGIC } from '../journal.js';
import type { CheckpointStore, Generation } from './store.js';

/**
 * A store that keeps checkpoints in this process's memory: for tests, and for code that
 * wants the Checkpoint API without touching the disk. Nothing survives the process.
 */
export function memoryStore(): CheckpointStore {
  const data = new Map<string, Uint8Array[]>();
  const generations = (name: string) => data.get(name) ?? [];
  /** name → epoch → appended byte arrays. */
  const journals = new Map<string, Map<number, Uint8Array[]>>();
  const modified = new Map<string, number>();
  const journalsOf = (name: string) => {
    let found = journals.get(name);
    if (found === undefined) journals.set(name, (found = new Map()));
    return found;
  };
  return {
    journal: {
      read: (name) =>
        [...journalsOf(name)]
          .sort(([a], [b]) => a - b)
          .map(([epoch, parts]) => ({
            epoch,
            location: `memory:${name}.journal-${epoch}`,
            bytes: Buffer.concat(parts),
          })),
      create(name, epoch) {
        const parts: Uint8Array[] = [JOURNAL_MAGIC];
        journalsOf(name).set(epoch, parts);
        const append = (bytes: Uint8Array) => {
          parts.push(Uint8Array.from(bytes));
          modified.set(name, Date.now());
        };
        return { append: async (bytes) => append(bytes), appendSync: append, close() {} };
      },
      lastModified: (name) => (journalsOf(name).size > 0 ? modified.get(name) : undefined),
      drop(name, below) {
        for (const epoch of journalsOf(name).keys())
          if (epoch < below) journalsOf(name).delete(epoch);
      },
    },
    locate: (name) => `memory:${name}`,
    generations: (name) =>
      generations(name).map(
        (_, index): Generation => ({ index, location: `memory:${name}#${index}` }),
      ),
    read(name, generation) {
      const bytes = generations(name)[generation.index];
      if (bytes === undefined) {
        throw new StoreError(`memory:${name}#${generation.index} does not exist`);
      }
      return bytes;
    },
    write(name, parts, keep) {
      const bytes = Buffer.concat(parts);
      data.set(name, [bytes, ...generations(name)].slice(0, keep));
    },
    remove(name) {
      data.delete(name);
      journals.delete(name);
    },
    moveAside(name, tag) {
      const moved = generations(name);
      data.delete(name);
      const aside = journals.get(name);
      journals.delete(name);
      if (aside !== undefined) journals.set(`${name}.${tag}`, aside);
      if (moved.length > 0) data.set(`${name}.${tag}`, moved);
      return moved.length > 0 ? [`memory:${name}.${tag}`] : [];
    },
  };
}
