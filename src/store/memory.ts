import type { CheckpointStore, Generation } from './store.js';

/**
 * A store that keeps checkpoints in this process's memory: for tests, and for code that
 * wants the Checkpoint API without touching the disk. Nothing survives the process.
 */
export function memoryStore(): CheckpointStore {
  const data = new Map<string, Uint8Array[]>();
  const generations = (name: string) => data.get(name) ?? [];
  return {
    locate: (name) => `memory:${name}`,
    generations: (name) =>
      generations(name).map(
        (_, index): Generation => ({ index, location: `memory:${name}#${index}` }),
      ),
    read(name, generation) {
      const bytes = generations(name)[generation.index];
      if (bytes === undefined) throw new Error(`memory:${name}#${generation.index} does not exist`);
      return bytes;
    },
    write(name, parts, keep) {
      const bytes = Buffer.concat(parts);
      data.set(name, [bytes, ...generations(name)].slice(0, keep));
    },
    remove(name) {
      data.delete(name);
    },
    moveAside(name, tag) {
      const moved = generations(name);
      data.delete(name);
      if (moved.length > 0) data.set(`${name}.${tag}`, moved);
      return moved.length > 0 ? [`memory:${name}.${tag}`] : [];
    },
  };
}
