/**
 * Restore order (#14.1): a tracked object whose setState draws random numbers (synaptic's
 * Network.fromJSON builds neurons with random biases) does not shift the restored stream, so
 * the resumed run draws exactly what an uninterrupted run draws.
 */
import { describe, expect, it } from 'vitest';
import { Checkpoint, type Trackable } from '../dist/index.js';
import { cleanedAfterEach } from './helpers.js';

const { open, tempDir } = cleanedAfterEach('rs-order-');

/** A model whose setState rebuilds itself from random numbers, as synaptic's fromJSON does. */
function model(chp: Checkpoint<{ drawn: number[] }>): Trackable & { weights: number[] } {
  return {
    weights: [1, 2],
    getState() {
      return this.weights;
    },
    setState(state) {
      this.weights = (state as number[]).map((w) => w + 0 * Math.random() + 0 * chp.random.next());
    },
  };
}

function run(dir: string, draws: number, when: 'before' | 'after', stop?: number): number[] {
  const chp = new Checkpoint<{ drawn: number[] }>({
    name: 'order',
    dir,
    seed: 42,
    mathRandom: true,
    log: false,
  });
  open.push(chp);
  const tracked = model(chp);
  if (when === 'before') chp.track('model', tracked);
  const state = chp.restore({ drawn: [] });
  if (when === 'after') chp.track('model', tracked);
  while (state.drawn.length < draws) {
    // Both streams: the checkpoint's generator and Math.random routed to it.
    state.drawn.push(state.drawn.length % 2 === 0 ? Math.random() : chp.random.next());
    if (state.drawn.length === stop) {
      chp.save();
      break;
    }
  }
  chp.close();
  return state.drawn;
}

describe('restore order (#14.1)', () => {
  for (const when of ['before', 'after'] as const) {
    it(`a setState that draws numbers (tracked ${when} restore()) leaves the resumed stream as an uninterrupted run's`, () => {
      const uninterrupted = run(tempDir(), 20, when);
      const dir = tempDir();
      expect(run(dir, 20, when, 7)).toEqual(uninterrupted.slice(0, 7));
      expect(run(dir, 20, when)).toEqual(uninterrupted);
    });
  }
});
