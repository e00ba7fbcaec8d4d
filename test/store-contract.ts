/**
 * The store contracts, one suite each, run by every store in a few lines: the contract every
 * CheckpointStore keeps (generations newest first, exact bytes, `keep`, names kept apart,
 * remove and moveAside), and the one every AsyncCheckpointStore keeps (below).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AsyncCheckpointStore,
  CheckpointLockedError,
  type CheckpointStore,
  type RemoteGeneration,
  StoreError,
} from '../dist/index.js';
import { rejectionOf as rejection } from './helpers.js';

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

/**
 * The contract every AsyncCheckpointStore (a shared store run by the background thread)
 * keeps (#16.6), as unstorage's `testDriver` does for its drivers: a store's test file runs
 * it in one line, inside the block that starts its server:
 *
 *   describeAsyncStoreContract('createS3Store', (namespace) => createS3Store({ …, prefix: namespace }));
 *
 * `make(namespace)` builds a store whose keys live under `namespace`; two stores made with one
 * namespace are two processes sharing a checkpoint. The suite closes the stores it makes.
 * Optional methods (`lease`, `journal`) are tested where the store has them.
 */
export function describeAsyncStoreContract(
  label: string,
  make: (namespace: string) => AsyncCheckpointStore,
): void {
  describe(`AsyncCheckpointStore contract: ${label}`, () => {
    const made: AsyncCheckpointStore[] = [];
    let namespaces = 0;
    afterEach(async () => {
      for (const store of made.splice(0)) await store.close();
    });
    /** Stores sharing a fresh namespace: `count` processes on the same checkpoints. */
    function stores(count = 1): AsyncCheckpointStore[] {
      const namespace = `contract-${process.pid}-${Date.now().toString(36)}-${++namespaces}`;
      return Array.from({ length: count }, () => {
        const store = make(namespace);
        made.push(store);
        return store;
      });
    }
    const owner = (pid: number, host: string) => ({ pid, host, since: '2026-12-01T00:00:00.000Z' });
    const store1 = () => stores(1)[0]!;

    async function bytesOf(
      store: AsyncCheckpointStore,
      name: string,
      generation: RemoteGeneration,
    ): Promise<string> {
      const dir = mkdtempSync(join(tmpdir(), 'rs-contract-'));
      try {
        await store.download(name, generation, join(dir, 'download.ckpt'));
        return readFileSync(join(dir, 'download.ckpt'), 'utf8');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }

    it('has no generations for a name never written', async () => {
      expect(await store1().generations('job')).toEqual([]);
    });

    it('commits the concatenation of the parts as one generation, unfenced without a lease', async () => {
      const store = store1();
      const generation = await store.write('job', [text('head|'), text(''), text('tail')], 2);
      expect(generation).toEqual({
        id: expect.any(String),
        size: 9,
        savedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        token: 0,
      });
      expect(await store.generations('job')).toEqual([generation]);
      expect(await bytesOf(store, 'job', generation)).toBe('head|tail');
    });

    it('keeps `keep` generations, newest first, with their exact bytes', async () => {
      const store = store1();
      const written: RemoteGeneration[] = [];
      for (const v of ['one', 'two', 'three']) written.push(await store.write('job', [text(v)], 2));
      expect(await store.generations('job')).toEqual([written[2], written[1]]);
      expect(await bytesOf(store, 'job', written[1]!)).toBe('two');
    });

    it('keeps names apart, including names that extend one another', async () => {
      const store = store1();
      for (const name of ['job', 'job.1', 'job-2', 'job.ckpt']) {
        await store.write(name, [text(name)], 2);
      }
      for (const name of ['job', 'job.1', 'job-2', 'job.ckpt']) {
        const [latest, ...rest] = await store.generations(name);
        expect(rest).toEqual([]);
        expect(await bytesOf(store, name, latest!)).toBe(name);
      }
    });

    it('refuses a `keep` below 1 with RangeError before writing anything', async () => {
      const store = store1();
      expect(await rejection(store.write('job', [text('x')], 0))).toBeInstanceOf(RangeError);
      expect(await store.generations('job')).toEqual([]);
    });

    it('refuses a download whose size differs from the generation, leaving no file', async () => {
      const store = store1();
      const generation = await store.write('job', [text('12345')], 2);
      const dir = mkdtempSync(join(tmpdir(), 'rs-contract-'));
      try {
        const path = join(dir, 'download.ckpt');
        const err = await rejection(store.download('job', { ...generation, size: 6 }, path));
        expect(err).toBeInstanceOf(StoreError);
        expect(existsSync(path)).toBe(false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('remove deletes every generation of that name only; a later write starts over', async () => {
      const store = store1();
      await store.write('job', [text('one')], 2);
      const other = await store.write('other', [text('x')], 2);
      await store.remove('job');
      expect(await store.generations('job')).toEqual([]);
      expect(await store.generations('other')).toEqual([other]);
      await store.remove('job');
      const again = await store.write('job', [text('again')], 2);
      expect(await store.generations('job')).toEqual([again]);
    });

    it('moveAside keeps the generations under name.tag, empties name, and new saves never touch them', async () => {
      const store = store1();
      const first = await store.write('job', [text('first')], 2);
      const second = await store.write('job', [text('second')], 2);
      expect(await store.moveAside('job', 'expired-1')).toHaveLength(2);
      expect(await store.generations('job')).toEqual([]);
      expect(await store.generations('job.expired-1')).toEqual([second, first]);
      expect(await bytesOf(store, 'job.expired-1', first)).toBe('first');
      const third = await store.write('job', [text('third')], 1);
      expect(await store.generations('job')).toEqual([third]);
      expect(await store.generations('job.expired-1')).toEqual([second, first]);
      expect(await store.moveAside('empty', 'x')).toEqual([]);
    });

    it('cleanup keeps every committed generation', async () => {
      const store = store1();
      await store.write('job', [text('one')], 2);
      const kept = await store.generations('job');
      await store.lock('job', owner(1, 'h'));
      await store.cleanup('job');
      expect(await store.generations('job')).toEqual(kept);
      await store.unlock('job');
    });

    it('lets one holder at a time lock, naming it; the same instance locks again, released by as many unlocks', async () => {
      const [a, b] = stores(2);
      await a!.lock('job', owner(123, 'host-a'));
      await a!.lock('job', owner(123, 'host-a'));
      const err = await rejection(b!.lock('job', owner(456, 'host-b')));
      expect(err).toBeInstanceOf(CheckpointLockedError);
      expect(err).toMatchObject({ pid: 123, host: 'host-a' });
      await a!.unlock('job');
      expect(await rejection(b!.lock('job', owner(456, 'host-b')))).toBeInstanceOf(
        CheckpointLockedError,
      );
      await a!.unlock('job');
      await b!.lock('job', owner(456, 'host-b'));
      expect((await b!.write('job', [text('x')], 2)).token).toBeGreaterThan(0);
      await b!.unlock('job');
    });

    it('fences out a holder whose lease was taken over: its commit is refused', async () => {
      const [a, b] = stores(2);
      if (b!.lease === undefined) return; // cannot name the holder to replace
      await a!.lock('job', owner(1, 'host-a'));
      const before = await a!.write('job', [text('a')], 2);
      const lease = await b!.lease('job');
      expect(lease).toMatchObject({ holder: { pid: 1, host: 'host-a' } });
      expect(lease!.expiresIn).toBeGreaterThan(0);
      await b!.lock('job', owner(2, 'host-b'), lease!.holder.token);
      expect(await rejection(a!.write('job', [text('stale')], 2))).toBeInstanceOf(
        CheckpointLockedError,
      );
      expect(await b!.generations('job')).toEqual([before]);
      await b!.unlock('job');
    });

    it('keeps step journals: appends in order by epoch, drops older epochs, removes them with the name', async () => {
      const store = store1();
      const journal = store.journal;
      if (journal === undefined) return;
      const magic = text('MAGIC');
      await journal.append('job', 0, magic, text('a'));
      await journal.append('job', 0, magic, text('b'));
      await journal.append('job', 1, magic, text('c'));
      const read = async () =>
        (await journal.read('job')).map(({ epoch, bytes }) => [epoch, asText(bytes)]);
      expect(await read()).toEqual([
        [0, 'MAGICab'],
        [1, 'MAGICc'],
      ]);
      expect(await journal.lastModified('job')).toEqual(expect.any(Number));
      expect(await journal.lastModified('other')).toBeUndefined();
      await journal.drop('job', 1);
      expect(await read()).toEqual([[1, 'MAGICc']]);
      await store.remove('job');
      expect(await read()).toEqual([]);
    });
  });
}
