/**
 * #13.1: an array's own enumerable named (non-index) properties are stored, as node:v8 and
 * the HTML structured clone store them: the `index`, `input` and `groups` of a regex match,
 * a label put on a list. Format 2 dropped them silently, for every kind of array.
 */
import { deserialize, serialize } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { decodePortable, FormatError } from '../dist/codec/portable/decode.js';
import { encodeState } from '../dist/codec/serializer.js';
import { registerClass, SerializationError } from '../dist/index.js';
import {
  distModule,
  portableRoundTrip,
  runModule,
  settersCalledDuring,
  thrownBy,
} from './helpers.js';

const v8RoundTrip = (value: unknown) => deserialize(serialize(value));

/** Own keys with their descriptors: what a comparison of arrays by items alone would miss. */
const ownProperties = (arr: object) =>
  Reflect.ownKeys(arr).map((key) => [key, Object.getOwnPropertyDescriptor(arr, key)]);

/**
 * A v2 structure by hand: the magic, `value`'s bytes, an empty buffer table, no referenced
 * ids, the footer.
 */
const structure = (value: readonly number[]): Buffer => {
  const body = Buffer.from([0x52, 0x53, 0x02, 0x00, ...value]);
  const footer = Buffer.alloc(8);
  footer.writeUInt32LE(body.byteLength, 0);
  return Buffer.concat([body, Buffer.from([0x00, 0x00]), footer]);
};
const latin1Key = (key: string) => [0x07, key.length, ...Buffer.from(key, 'latin1')];

const ints = (n: number) => Array.from({ length: n }, (_, i) => i - 3);
const doubles = (n: number) => Array.from({ length: n }, (_, i) => i + 0.5);
const objects = (n: number) => Array.from({ length: n }, (_, i) => ({ i }));

describe('arrays keep their own enumerable named properties', () => {
  // Short and long ones of each kind: the encoder looks for named properties one way for
  // short arrays and another for long ones (#13.1 cost).
  const kinds: Record<string, () => unknown[]> = {
    'dense objects': () => objects(3),
    'dense objects, long': () => objects(5000),
    'packed ints': () => ints(6),
    'packed ints, long': () => ints(5000),
    'packed doubles': () => doubles(4),
    'packed doubles, long': () => doubles(5000),
    'two numbers (too short to pack)': () => [1, 2],
    empty: () => [],
    // biome-ignore lint/suspicious/noSparseArray: holes are the point.
    holey: () => [1, , 3, , ,],
    sparse: () => {
      const arr: unknown[] = ['first'];
      arr[100_000] = 'last';
      return arr;
    },
    'holey, long': () => {
      const arr: unknown[] = ints(1000);
      delete arr[500];
      return arr;
    },
  };

  for (const [kind, make] of Object.entries(kinds)) {
    test(`${kind}: named properties come back, in order, as node:v8 brings them back`, () => {
      const arr = Object.assign(make(), { label: 'x', count: 3, nested: { deep: [1] } });
      const back = portableRoundTrip(arr) as unknown[];
      expect(back).toStrictEqual(arr);
      expect(ownProperties(back)).toEqual(ownProperties(arr));
      expect(ownProperties(back)).toEqual(ownProperties(v8RoundTrip(arr) as object));
    });
  }

  test('any array with any named properties comes back equal, as node:v8 brings it back', () => {
    // Keys Object.assign would not add as named properties: indices, length, __proto__.
    const key = fc
      .string()
      .filter((k) => !['__proto__', 'length'].includes(k) && String(Number(k) >>> 0) !== k);
    const items = fc.oneof(
      fc.array(fc.anything(), { maxLength: 6 }),
      fc.array(fc.integer(), { minLength: 4, maxLength: 200 }),
      fc.array(fc.double(), { minLength: 4, maxLength: 200 }),
      fc.sparseArray(fc.anything(), { maxLength: 20 }),
    );
    fc.assert(
      fc.property(items, fc.dictionary(key, fc.anything()), (arr, named) => {
        const labelled = Object.assign(arr, named);
        const back = portableRoundTrip(labelled) as unknown[];
        expect(back).toStrictEqual(labelled);
        expect(Object.keys(back)).toEqual(Object.keys(v8RoundTrip(labelled) as object));
      }),
      { numRuns: 300 },
    );
  });

  test('regex match results keep index, input and groups (undefined or a null-prototype object)', () => {
    const plain = 'abc'.match(/b/)!;
    const named = 'id: 42'.match(/(?<num>\d+)/)!;
    const indices = /(?<num>\d+)/d.exec('id: 42')!;
    const all = [...'a1b2'.matchAll(/(?<digit>\d)/g)];
    const state = { plain, named, indices, all };
    const back = portableRoundTrip(state) as typeof state;
    expect(back).toStrictEqual(state);
    // node:v8 gives `groups` Object.prototype (format 2 keeps the null one): toEqual.
    expect(back).toEqual(v8RoundTrip(state));
    expect([back.plain.index, back.plain.input, back.plain.groups]).toEqual([1, 'abc', undefined]);
    expect(Object.hasOwn(back.plain, 'groups')).toBe(true);
    expect(Object.getPrototypeOf(back.named.groups)).toBe(null);
    expect(back.named.groups).toEqual({ num: '42' });
    expect(back.indices.indices).toEqual(indices.indices);
    expect(Object.getPrototypeOf(back.indices.indices!.groups)).toBe(null);
    expect(back.all.map((m) => [m.index, m.groups!.digit])).toEqual([
      [1, '1'],
      [3, '2'],
    ]);
  });

  test('named properties may hold the array itself, or objects shared with the rest of the state', () => {
    const shared = { id: 'shared' };
    const small = Object.assign([1, 2], { shared });
    const large = Object.assign(ints(1000), { shared });
    (small as unknown as { self: unknown }).self = small;
    (large as unknown as { self: unknown }).self = large;
    const back = portableRoundTrip({ small, large, shared }) as {
      small: number[] & { self: unknown; shared: unknown };
      large: number[] & { self: unknown; shared: unknown };
      shared: object;
    };
    expect(back.small.self).toBe(back.small);
    expect(back.large.self).toBe(back.large);
    expect(back.small.shared).toBe(back.shared);
    expect(back.large.shared).toBe(back.shared);
  });

  test('accessors are read once, as objects’ getters are, and come back as data', () => {
    for (const arr of [[{ a: 1 }], ints(10), ints(1000)] as unknown[][]) {
      let reads = 0;
      Object.defineProperty(arr, 'lazy', {
        get: () => ++reads,
        enumerable: true,
        configurable: true,
      });
      const back = portableRoundTrip(arr) as unknown[];
      expect(reads).toBe(1);
      expect(Object.getOwnPropertyDescriptor(back, 'lazy')).toEqual({
        value: 1,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
  });

  test('non-enumerable named properties and symbol keys are skipped, as node:v8 skips them', () => {
    for (const arr of [[1], ints(10), ints(1000)] as unknown[][]) {
      Object.defineProperty(arr, 'hidden', { value: 1, enumerable: false });
      Object.defineProperty(arr, Symbol('hidden'), { value: 2, enumerable: false });
      const back = portableRoundTrip(arr) as unknown[];
      expect(Reflect.ownKeys(back)).toEqual(Reflect.ownKeys(v8RoundTrip(arr) as object));
      expect(Object.hasOwn(back, 'hidden')).toBe(false);
    }
  });

  test('an enumerable symbol key cannot be stored, as on objects: the path names the array', () => {
    const sparse: unknown[] = [1];
    sparse[100] = 2;
    for (const arr of [[1], ints(10), ints(1000), objects(1000), sparse]) {
      (arr as unknown as Record<symbol, unknown>)[Symbol('tag')] = 1;
      const err = thrownBy(() => encodeState({ state: { list: arr } }));
      expect(err).toBeInstanceOf(SerializationError);
      expect((err as SerializationError).message).toBe(
        'Cannot store `state.list`: it is an array with a symbol key (Symbol(tag)), which cannot be stored',
      );
    }
  });

  test('a named property that cannot be stored names its path', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point.
    for (const arr of [[1], ints(1000), [1, , 3]] as unknown[][]) {
      const err = thrownBy(() =>
        encodeState({ state: { list: Object.assign(arr, { onStep() {} }) } }),
      );
      expect(err).toBeInstanceOf(SerializationError);
      expect((err as SerializationError).path).toBe('state.list.onStep');
    }
  });

  test('an item past a hole that cannot be stored names its own index, once', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point.
    const err = thrownBy(() => encodeState({ state: { list: [1, , { f() {} }] } }));
    expect((err as SerializationError).path).toBe('state.list[2].f');
  });

  test('a long array stores its named properties even when looking for them runs a getter that throws', () => {
    // Long arrays are searched with util.inspect, which reads Symbol.toStringTag of the
    // named properties' values: a class's getter may throw there (#13.1). Storing the
    // instance itself reads no tag, so neither may looking for the array's named keys.
    class Tagged {
      n = 1;
      get [Symbol.toStringTag](): string {
        throw new Error('the tag cannot be read');
      }
    }
    registerClass(Tagged, 'array-properties.Tagged');
    for (const arr of [ints(6), ints(1000), objects(1000)] as unknown[][]) {
      const labelled = Object.assign(arr, { unit: new Tagged() });
      const back = portableRoundTrip(labelled) as unknown as { unit: Tagged };
      expect(back.unit).toBeInstanceOf(Tagged);
      expect(back.unit.n).toBe(1);
      expect(Object.keys(back)).toEqual(Object.keys(labelled));
    }
  });

  test('a throwing Symbol.toStringTag getter on Array.prototype fails no save, the first one included', () => {
    // The first long array makes util.inspect check itself, once a process (#13.1): a fresh
    // process, so that check meets the getter too.
    const script = `
      const { decodeState, encodeState } = await import(${distModule('codec/serializer.js')});
      Object.defineProperty(Array.prototype, Symbol.toStringTag, {
        get() { throw new Error('no tag'); },
      });
      const arr = Object.assign(Array.from({ length: 1000 }, (_, i) => i), { label: 'x' });
      const { structure, segments } = encodeState({ arr });
      const back = decodeState(structure, segments.map((s) => s.slice().buffer)).arr;
      console.log(JSON.stringify([back.length, back.label]));`;
    expect(JSON.parse(runModule(script))).toEqual([1000, 'x']);
  });

  test('a proxy over an array keeps the named properties its traps report', () => {
    const target = Object.assign(ints(1000), { label: 'proxied' });
    const back = portableRoundTrip(new Proxy(target, {})) as unknown[];
    expect(ownProperties(back)).toEqual(ownProperties(target));
  });
});

describe('decoding named properties of arrays is safe', () => {
  // tag array-with-named-properties, length 1, int 7, then the given key, int 1, END.
  const named = (key: string) =>
    structure([0x1d, 0x01, 0x04, 0x0e, ...latin1Key(key), 0x04, 0x02, 0x00]);

  test('a named property __proto__ is an own data property: no prototype changes', () => {
    const back = decodePortable(named('__proto__'), []) as unknown[];
    expect(Object.getPrototypeOf(back)).toBe(Array.prototype);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toBe(1);
    expect(Array.from(back)).toEqual([7]);
  });

  test('a named property length, or one that is an index, is refused', () => {
    for (const key of ['length', '0', '1', '4294967294']) {
      expect(() => decodePortable(named(key), [])).toThrow(
        new FormatError(`array property \`${key}\` is not a named property`),
      );
    }
    // Not indices: kept as named properties.
    for (const key of ['01', '-0', '1.5', '4294967295']) {
      const back = decodePortable(named(key), []) as unknown as Record<string, unknown>;
      expect([back[key], (back as unknown as unknown[]).length]).toEqual([1, 1]);
    }
  });

  test('no setter runs while defining them, even one someone put on Array.prototype', () => {
    const calls = settersCalledDuring(Array.prototype, 'unit', () => {
      for (const arr of [['a'], ints(6), doubles(6)]) {
        const back = portableRoundTrip(
          Object.defineProperty(arr, 'unit', { value: 'm', enumerable: true }),
        );
        expect(Object.getOwnPropertyDescriptor(back, 'unit')?.value).toBe('m');
      }
    });
    expect(calls).toBe(0);
  });
});
