/**
 * The contract every CheckpointStore keeps, run against each store: generations newest
 * first, exact bytes, `keep`, names kept apart, remove and moveAside.
 */
import { describe, expect, it } from 'vitest';
import type { CheckpointStore } from '../dist/index.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const asText = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

export interface StoreCase {
  label: string;
  make(): CheckpointStore;
  /** Location reported for generation `index` of `name` in the store made last (or a matcher). */
  location(name: string, index: number): unknown;
  /** What moveAside(name, tag) returns for a name with `count` generations. */
  movedAside(name: string, tag: string, count: number): string[];
}

export function describeStoreContract(cases: StoreCase[]): void {
  describe.each(cases)('CheckpointStore contract: $label', (c) => {
    /** Texts of every generation of `name`, newest first, with the indices checked. */
    function contents(store: CheckpointStore, name: string): string[] {
      const generations = store.generations(name);
      expect(generations).toEqual(
        generations.map((_, index) => ({ index, location: c.location(name, index) })),
      );
      return generations.map((g) => asText(store.read(name, g)));
    }

    it('has no generations for a name never written', () => {
      const store = c.make();
      expect(store.generations('job')).toEqual([]);
    });

    it('stores the concatenation of the parts as generation 0', () => {
      const store = c.make();
      store.write('job', [text('head|'), text(''), text('body|'), text('tail')], 2);
      expect(store.generations('job')).toEqual([{ index: 0, location: c.location('job', 0) }]);
      expect(contents(store, 'job')).toEqual(['head|body|tail']);
    });

    it('keeps a snapshot: changing the written parts afterwards changes nothing stored', () => {
      const store = c.make();
      const part = text('abc');
      store.write('job', [part], 2);
      part[0] = 0x7a;
      expect(contents(store, 'job')).toEqual(['abc']);
    });

    it('keep=2 keeps the latest and the previous write, exact bytes, newest first', () => {
      const store = c.make();
      for (const v of ['one', 'two', 'three']) store.write('job', [text(v)], 2);
      expect(contents(store, 'job')).toEqual(['three', 'two']);
    });

    it('keep=3 keeps three generations and shifts them on every write', () => {
      const store = c.make();
      store.write('job', [text('one')], 3);
      store.write('job', [text('two')], 3);
      expect(contents(store, 'job')).toEqual(['two', 'one']);
      store.write('job', [text('three')], 3);
      expect(contents(store, 'job')).toEqual(['three', 'two', 'one']);
      store.write('job', [text('four')], 3);
      expect(contents(store, 'job')).toEqual(['four', 'three', 'two']);
    });

    it('keep=1 keeps only the latest write', () => {
      const store = c.make();
      store.write('job', [text('one')], 1);
      store.write('job', [text('two')], 1);
      expect(contents(store, 'job')).toEqual(['two']);
    });

    it('lowering keep deletes the extra generations on the next write', () => {
      const store = c.make();
      for (const v of ['one', 'two', 'three']) store.write('job', [text(v)], 3);
      store.write('job', [text('four')], 2);
      expect(contents(store, 'job')).toEqual(['four', 'three']);
      store.write('job', [text('five')], 1);
      expect(contents(store, 'job')).toEqual(['five']);
    });

    it('raising keep lets the generations grow again', () => {
      const store = c.make();
      store.write('job', [text('one')], 1);
      store.write('job', [text('two')], 3);
      expect(contents(store, 'job')).toEqual(['two', 'one']);
      store.write('job', [text('three')], 3);
      expect(contents(store, 'job')).toEqual(['three', 'two', 'one']);
    });

    it('keeps names apart, including names that extend one another', () => {
      const store = c.make();
      store.write('job', [text('a')], 2);
      store.write('job.1', [text('b')], 2);
      store.write('job-2', [text('c')], 2);
      store.write('job.ckpt', [text('d')], 2);
      expect(contents(store, 'job')).toEqual(['a']);
      expect(contents(store, 'job.1')).toEqual(['b']);
      expect(contents(store, 'job-2')).toEqual(['c']);
      expect(contents(store, 'job.ckpt')).toEqual(['d']);
    });

    it('remove deletes every generation of that name only; a later write starts over', () => {
      const store = c.make();
      for (const v of ['one', 'two', 'three']) store.write('job', [text(v)], 3);
      store.write('other', [text('x')], 3);
      store.remove('job');
      expect(store.generations('job')).toEqual([]);
      expect(contents(store, 'other')).toEqual(['x']);
      store.remove('job');
      expect(store.generations('job')).toEqual([]);
      store.write('job', [text('again')], 3);
      expect(contents(store, 'job')).toEqual(['again']);
    });

    it('moveAside empties the name, reports where, and later writes start over', () => {
      const store = c.make();
      store.write('job', [text('one')], 2);
      store.write('job', [text('two')], 2);
      expect(store.moveAside('job', 'expired-1')).toEqual(c.movedAside('job', 'expired-1', 2));
      expect(store.generations('job')).toEqual([]);
      store.write('job', [text('three')], 2);
      store.write('job', [text('four')], 2);
      expect(contents(store, 'job')).toEqual(['four', 'three']);
      expect(store.moveAside('job', 'expired-2')).toEqual(c.movedAside('job', 'expired-2', 2));
      expect(store.moveAside('job', 'expired-3')).toEqual([]);
    });
  });
}
