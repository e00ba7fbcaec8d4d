/**
 * #13.1: format 2's own encoder and decoder. Whatever the state, it comes back as node:v8's
 * structured clone would bring it back; whatever the bytes, decoding fails cleanly
 * (FormatError), runs no code, touches no prototype and keeps to its own stack.
 */
import { getHeapStatistics } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { decodePortable, FormatError } from '../dist/codec/portable/decode.js';
import { decodeState, encodeState } from '../dist/codec/serializer.js';
import { registerClass, SerializationError } from '../dist/index.js';
import {
  distModule,
  portableRoundTrip,
  runModule,
  settersCalledDuring,
  thrownBy,
} from './helpers.js';

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

/**
 * Decodes `levels` arrays of 15,000 slots, each inside the last around an undefined, each
 * ended by `close`; returns the innermost array and how much the heap grew.
 */
const nestedArrays = (levels: number, close: readonly number[]) => {
  const value: number[] = [];
  for (let i = 0; i < levels; i++) value.push(0x0b, 0x98, 0x75); // array, varint 15,000
  value.push(0x00);
  for (let i = 0; i < levels; i++) value.push(...close);
  const bytes = structure(value);
  const before = getHeapStatistics().used_heap_size;
  let root = decodePortable(bytes, []) as unknown[];
  const grown = getHeapStatistics().used_heap_size - before;
  for (let i = 1; i < levels; i++) root = root[0] as unknown[];
  return { innermost: root, grown };
};

const anything = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

describe('format 2 round trips', () => {
  test('any structured-clone value comes back equal, prototypes (null ones too) included', () => {
    fc.assert(
      fc.property(anything, (value) => {
        expect(portableRoundTrip(value)).toStrictEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  test('a Date or a typed array referenced twice comes back as one object, as structured clone gives it', () => {
    const when = new Date(86_400_000);
    const weights = new Float64Array([1.5, 2.5]);
    const view = new Uint8Array(weights.buffer, 8, 8);
    const back = portableRoundTrip({ a: when, b: when, w: weights, again: weights, view }) as {
      a: Date;
      b: Date;
      w: Float64Array;
      again: Float64Array;
      view: Uint8Array;
    };
    expect(back.a).toBe(back.b);
    expect(back.a.getTime()).toBe(86_400_000);
    expect(back.w).toBe(back.again);
    expect(Array.from(back.w)).toEqual([1.5, 2.5]);
    // Two views of one buffer still share it.
    expect(back.view.buffer).toBe(back.w.buffer);
  });

  test('object ids never carry over from one encoding to the next, a failed one included', () => {
    const x = { name: 'x' };
    const y = { name: 'y' };
    portableRoundTrip({ first: x, again: x });
    // Fails after y and x got ids: those must not pass for ids of the next encoding.
    expect(() => encodeState({ value: { y, x, bad: () => 1 } })).toThrow(SerializationError);
    const back = portableRoundTrip({ y, x, same: x }) as Record<string, { name: string }>;
    expect([back.y!.name, back.x!.name]).toEqual(['y', 'x']);
    expect(back.same).toBe(back.x);
    expect(back.y).not.toBe(back.x);
  });

  test('an encoding started by a getter during another one leaves both right (#13.2 ids)', () => {
    const a = { name: 'a' };
    const b = { name: 'b' };
    const shared = { name: 'shared' };
    let inner: ReturnType<typeof encodeState> | undefined;
    const state = {
      a,
      b,
      // A getter runs while its object is stored: here it saves something else meanwhile.
      get lazy() {
        inner = encodeState({ value: [b, shared, a] });
        return shared;
      },
      again: shared,
    };
    const outer = encodeState({ value: state });
    const back = decodeState(outer.structure, []).value as Record<string, { name: string }>;
    expect([back.a!.name, back.b!.name, back.lazy!.name]).toEqual(['a', 'b', 'shared']);
    expect(back.again).toBe(back.lazy);
    const innerBack = decodeState(inner!.structure, []).value as { name: string }[];
    expect(innerBack.map((o) => o.name)).toEqual(['b', 'shared', 'a']);
  });

  test('strings keep every UTF-16 code unit, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        expect(portableRoundTrip(s)).toBe(s);
      }),
    );
    const odd = ['\ud800', 'a\udfffb', '\u00ff\u0100', `${'x'.repeat(70)}\ud83d`];
    for (const s of odd) expect(portableRoundTrip(s)).toBe(s);
  });

  test('numbers at every encoding boundary, -0 and NaN included', () => {
    const numbers = [0, -0, 1, -1, 63, 64, -64, -65, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 32];
    numbers.push(2 ** 53, -(2 ** 53), Number.NaN, Number.MIN_VALUE, Number.MAX_VALUE, -Infinity);
    const back = portableRoundTrip(numbers) as number[];
    expect(back.map((n, i) => Object.is(n, numbers[i]))).toEqual(numbers.map(() => true));
  });

  test('dense arrays of numbers are stored packed and come back item for item (#13.2)', () => {
    const ints = [0, 1, -1, 63, -64, 64, 8191, -8193, 2 ** 21, 2 ** 28, 2 ** 31 - 1, -(2 ** 31)];
    const numbers = [0.5, -0, Number.NaN, 2 ** 31, -Infinity, 1, 2 ** 53 + 2];
    const { structure } = encodeState({ ints, numbers });
    // magic, object, key "ints", then the packed tag and the length.
    expect([structure[4], structure[5], structure[11], structure[12]]).toEqual([
      0x0d,
      0x07,
      0x1b,
      ints.length,
    ]);
    expect(structure.indexOf(Buffer.from([0x1c, numbers.length]))).toBeGreaterThan(12);
    const back = decodeState(structure, []) as { ints: number[]; numbers: number[] };
    expect(back.ints).toEqual(ints);
    expect(back.numbers.map((n, i) => Object.is(n, numbers[i]))).toEqual(numbers.map(() => true));
    // A hole or a non-number keeps the item-by-item encoding (and the hole).
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point.
    const holey = [1, 2, , 4, 5];
    expect(portableRoundTrip(holey)).toStrictEqual(holey);
    expect(portableRoundTrip([1, 2, 3, '4', 5])).toStrictEqual([1, 2, 3, '4', 5]);
  });

  test('a sparse array whose first item is a number keeps its holes, nothing allocated for its length', () => {
    // The packed forms reserve room by the length: a length of 2^32 - 1 is 20 GB of room.
    for (const first of [7, 0.5]) {
      const sparse: unknown[] = [first];
      sparse[2 ** 32 - 2] = 'last';
      const back = portableRoundTrip(sparse) as unknown[];
      expect(back.length).toBe(2 ** 32 - 1);
      expect(Object.keys(back)).toEqual(['0', String(2 ** 32 - 2)]);
      expect([back[0], back[2 ** 32 - 2]]).toEqual([first, 'last']);
    }
    // Long dense ones still come back whole: past the first room reserved, an int past it.
    const ints = Array.from({ length: 2 ** 21 + 5 }, (_, i) => i - 2 ** 20);
    const numbers = ints.map((n) => n + 0.5);
    const mixed = [...ints];
    mixed[2 ** 21] = 0.25;
    const lists = portableRoundTrip({ ints, numbers, mixed }) as Record<string, number[]>;
    for (const [name, list] of Object.entries({ ints, numbers, mixed })) {
      expect(lists[name]!.length).toBe(list.length);
      expect(lists[name]!.every((n, i) => n === list[i])).toBe(true);
    }
  });

  test('an array a getter of its items grows or shrinks is stored as long as it was when reached', () => {
    // A getter on an index runs while the array is read: the bytes must still agree with
    // the length written first (else the save succeeds and the restore finds it corrupt).
    const grown = (items: unknown[]) => {
      const arr = [...items];
      Object.defineProperty(arr, 1, {
        get: () => (arr.length < 9 ? arr.push(8, 9, 10) && 2 : 2),
        enumerable: true,
      });
      return arr;
    };
    const shrunk = (items: unknown[]) => {
      const arr = [...items];
      Object.defineProperty(arr, 1, {
        get: () => {
          arr.length = 3;
          return 2;
        },
        enumerable: true,
        configurable: true,
      });
      return arr;
    };
    for (const items of [
      [1, 2, 3, 4, 5, 6],
      [0.5, 2, 3, 4, 5, 6],
      ['a', 2, 3, 4, 5, 6],
    ]) {
      const back = portableRoundTrip({
        grown: grown(items),
        shrunk: shrunk(items),
        tail: 'end',
      }) as {
        grown: unknown[];
        shrunk: unknown[];
        tail: string;
      };
      expect(back.tail).toBe('end');
      expect(back.grown).toEqual([items[0], 2, 3, 4, 5, 6]);
      expect(back.shrunk.length).toBe(6);
      expect(Object.keys(back.shrunk)).toEqual(['0', '1', '2']);
      expect(back.shrunk.slice(0, 3)).toEqual([items[0], 2, 3]);
    }
  });

  test('a packed integer beyond 32 bits is refused, not wrapped', () => {
    // intArray of 1 item: the varint 2^32 (five bytes, the last over 0x0F).
    const bytes = structure([0x1b, 0x01, 0x80, 0x80, 0x80, 0x80, 0x10]);
    expect(() => decodeState(bytes, [])).toThrow(new FormatError('int out of range'));
  });

  test('sparse arrays keep their holes and length, even a length of 2^32 - 1', () => {
    const huge: unknown[] = [];
    huge[2 ** 32 - 2] = 'last';
    huge[5] = 'five';
    const back = portableRoundTrip(huge) as unknown[];
    expect(back.length).toBe(2 ** 32 - 1);
    expect(Object.keys(back)).toEqual(['5', String(2 ** 32 - 2)]);
    // biome-ignore lint/suspicious/noSparseArray: holes are the point.
    const trailing = [1, , 3, , ,];
    expect(portableRoundTrip(trailing)).toStrictEqual(trailing);
  });

  test('a state nested 200,000 levels deep decodes (the decoder keeps its own stack)', () => {
    // Encoding recurses (and says so when the stack runs out); this one is built by hand
    // as the encoder writes it: 200,000 one-item arrays around a 1.
    const depth = 200_000;
    const inner = encodeState({ v: 1 }).structure;
    // magic, object tag, key "v": then the value; then END, buffer table, referenced ids,
    // footer.
    const head = inner.subarray(0, 8);
    const deep = Buffer.concat([
      head,
      Buffer.alloc(depth * 2, Buffer.from([0x0b, 0x01])),
      Buffer.from([0x04, 0x02, 0x00, 0x00, 0x00]),
    ]);
    const footer = Buffer.alloc(8);
    footer.writeUInt32LE(deep.byteLength - 2, 0);
    let value = (decodeState(Buffer.concat([deep, footer]), []) as { v: unknown }).v;
    let levels = 0;
    while (Array.isArray(value)) {
      value = value[0];
      levels++;
    }
    expect([levels, value]).toEqual([depth, 1]);
  });

  test('__proto__ keys stay data: no prototype changes, nothing polluted', () => {
    const state = JSON.parse('{"__proto__": {"polluted": true}, "a": {"__proto__": null}}');
    const back = portableRoundTrip(state) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.hasOwn(back, '__proto__')).toBe(true);
    expect((back.a as object).constructor).toBe(Object);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  test('no setter runs while decoding, even one someone put on Object.prototype', () => {
    const calls = settersCalledDuring(Object.prototype, 'trap', () => {
      const back = portableRoundTrip({ trap: 1, list: [{ trap: 2 }] }) as { trap: number };
      expect(Object.getOwnPropertyDescriptor(back, 'trap')?.value).toBe(1);
    });
    expect(calls).toBe(0);
  });

  test('a `get` someone put on Object.prototype does not spoil the defined properties', () => {
    // A data property: plain assignment stays safe, but a descriptor inheriting it would
    // carry both `value` and `get`, which defineProperty refuses. A process of its own: the
    // test runner's own descriptors break under it too.
    const script = `
      const { decodeState, encodeState } = await import(${distModule('codec/serializer.js')});
      const { registerClass } = await import(${distModule('index.js')});
      class Tagged { label = 'x'; }
      registerClass(Tagged);
      const { structure, segments } = encodeState({ tagged: new Tagged(), err: new RangeError('out') });
      Object.defineProperty(Object.prototype, 'get', { value: () => 0, writable: true, configurable: true });
      const back = decodeState(structure, segments);
      delete Object.prototype.get;
      console.log(JSON.stringify([back.tagged instanceof Tagged, back.tagged.label, back.err instanceof RangeError, back.err.message]));`;
    expect(JSON.parse(runModule(script))).toEqual([true, 'x', true, 'out']);
  });

  test('no setter runs while filling arrays, even one on an index of Array.prototype', () => {
    const calls = settersCalledDuring(Array.prototype, '1', () => {
      const lists = { ints: [1, 2, 3, 4], numbers: [0.5, 1.5, 2.5, 3.5], mixed: ['a', 'b'] };
      const back = portableRoundTrip(lists) as typeof lists;
      expect(Object.getOwnPropertyDescriptor(back.ints, '1')?.value).toBe(2);
      expect(Object.getOwnPropertyDescriptor(back.numbers, '1')?.value).toBe(1.5);
      expect(Object.getOwnPropertyDescriptor(back.mixed, '1')?.value).toBe('b');
    });
    expect(calls).toBe(0);
  });

  test('registered classes come back without their constructor running; unknown names fail', () => {
    let constructed = 0;
    class Counted {
      n = 1;
      constructor() {
        constructed++;
      }
    }
    registerClass(Counted, 'portable.Counted');
    const back = portableRoundTrip([new Counted(), new Counted()]) as Counted[];
    expect(constructed).toBe(2);
    expect(back[1]).toBeInstanceOf(Counted);
    expect(back[1]!.n).toBe(1);
    class Stranger {}
    registerClass(Stranger, 'portable.Stranger');
    const { structure } = encodeState({ s: new Stranger() });
    const renamed = Buffer.from(
      structure.toString('latin1').replace('portable.Stranger', 'portable.Unknown!'),
      'latin1',
    );
    expect(() => decodeState(renamed, [])).toThrow(
      new FormatError(
        'class `portable.Unknown!` is not registered in this process; call registerClass() before restore()',
      ),
    );
  });
});

describe('format 2 decoding of damaged bytes', () => {
  // #13.2: the decoder keeps only the objects the structure lists as referred back to.
  describe('references go only to objects the referenced ids list, met already', () => {
    /** magic, an object {a: <ref 1>, b: {}} or its cycle, the empty buffer table, `ids`, footer. */
    const withIds = (value: readonly number[], ids: readonly number[]) => {
      const body = Buffer.from([0x52, 0x53, 0x02, 0x00, ...value, 0x00]);
      const footer = Buffer.alloc(8);
      footer.writeUInt32LE(body.byteLength - 1, 0);
      return Buffer.concat([body, Buffer.from(ids), footer]);
    };
    // {a: {}, b: <ref 1>}: the root is object 0, its `a` object 1.
    const shared = [0x0d, 0x07, 0x01, 0x61, 0x0d, 0x00, 0x07, 0x01, 0x62, 0x0a, 0x01, 0x00];

    test('the encoder lists each referenced id once, ascending, as gaps', () => {
      const one = {};
      const two = {};
      const { structure } = encodeState({ a: one, b: two, c: two, d: one, e: two });
      // Buffer table (0), then 2 ids: 1, and 2 as a gap of 1; then the footer.
      expect([...structure.subarray(-12, -8)]).toEqual([0x00, 0x02, 0x01, 0x01]);
      const back = decodeState(structure, []) as Record<string, object>;
      expect([back.a === back.d, back.b === back.c, back.c === back.e, back.a === back.b]).toEqual([
        true,
        true,
        true,
        false,
      ]);
    });

    test('a listed reference to an object met decodes', () => {
      const back = decodePortable(withIds(shared, [0x01, 0x01]), []) as Record<string, object>;
      expect(back.b).toBe(back.a);
    });

    test.each([
      ['not listed', [0x00], 'bad reference 1'],
      ['listed under another id', [0x01, 0x02], 'bad reference 1'],
      ['ids out of order', [0x02, 0x01, 0x00], 'referenced ids out of order'],
      ['more ids than bytes', [0x05, 0x01], 'a count of 5 where 1 bytes are left'],
    ])('a reference %s is refused', (_, ids, message) => {
      const err = thrownBy(() => decodePortable(withIds(shared, ids), []));
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).toBe(message);
    });

    test('a reference to a listed object not met yet is refused', () => {
      // {a: <ref 1>, b: {}}: object 1 comes after the reference to it.
      const ahead = [0x0d, 0x07, 0x01, 0x61, 0x0a, 0x01, 0x07, 0x01, 0x62, 0x0d, 0x00, 0x00];
      const err = thrownBy(() => decodePortable(withIds(ahead, [0x01, 0x01]), []));
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).toBe('bad reference 1');
    });
  });

  const sample = encodeState({
    state: {
      list: [1, 'two', 3n, new Date(0), new Map([[1, { a: [true] }]]), new Set(['s'])],
      error: new RangeError('r', { cause: 'c' }),
      bytes: Uint8Array.of(1, 2, 3),
      ints: [1, -2, 300, 2 ** 31 - 1, -(2 ** 31)],
      numbers: [0.5, -0, Number.NaN, 1e300],
      nested: { deeper: { deepest: Float64Array.of(0.5) } },
    },
  }).structure;

  test('every single-byte change and every truncation decodes or fails with FormatError', () => {
    const others: string[] = [];
    const check = (bytes: Buffer, what: string) => {
      try {
        decodePortable(bytes, []);
      } catch (err) {
        if (!(err instanceof FormatError)) others.push(`${what}: ${String(err)}`);
      }
    };
    for (let at = 0; at < sample.byteLength; at++) {
      for (const value of [0, 1, 0x7f, 0x80, 0xff, sample[at]! ^ 1]) {
        const damaged = Buffer.from(sample);
        damaged[at] = value;
        check(damaged, `byte ${at} = ${value}`);
      }
      check(sample.subarray(0, at), `cut at ${at}`);
    }
    expect(others).toEqual([]);
  });

  test('arrays nested in arrays cannot claim the bytes left over and over (memory bounded by the file)', () => {
    // 10,000 arrays, each inside the last, each of length 15,000 (the bytes left, about),
    // each holding its child, 14,998 holes and undefined: a valid 70 kB state. Room for
    // every array's length at once would be 8,000 x 15,000 slots, about 1 GB.
    // holes, varint 14,998; undefined
    const { innermost, grown } = nestedArrays(10_000, [0x0c, 0x96, 0x75, 0x00]);
    expect([innermost.length, Object.keys(innermost)]).toEqual([15_000, ['0', '14999']]);
    expect(grown).toBeLessThan(100 * 2 ** 20);
  });

  test('trailing holes claim bounded memory: 10,000 nested arrays of 15,000 slots in 60 kB', () => {
    // Each array holds its child, then 14,999 holes: 6 bytes a level. `arr.length = 15000`
    // for each would make V8 allocate every slot: 1.2 GB for the whole; past 8M slots in
    // all, the rest keep their holes sparse.
    const { innermost, grown } = nestedArrays(10_000, [0x0c, 0x97, 0x75]); // holes, 14,999
    expect([innermost.length, Object.keys(innermost)]).toEqual([15_000, ['0']]);
    expect(innermost[0]).toBeUndefined();
    expect(grown).toBeLessThan(100 * 2 ** 20);
  });

  test('a count larger than the bytes left is refused before anything is allocated', () => {
    // A Map claiming 2^40 entries in a few bytes.
    const bytes = Buffer.from([
      0x52, 0x53, 0x02, 0x00, 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00, 0x00,
    ]);
    const footer = Buffer.alloc(8);
    footer.writeUInt32LE(bytes.byteLength - 2, 0);
    const err = thrownBy(() => decodeState(Buffer.concat([bytes, footer]), []));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/^a count of 1099511627776 where 0 bytes are left$/);
  });
});

describe('format 2 encoding failures keep their paths', () => {
  test('a Float16Array-like unknown view names its path', () => {
    class Odd extends Uint8Array {}
    const err = thrownBy(() => encodeState({ state: { odd: new Odd(2) } })) as SerializationError;
    expect(err).toBeInstanceOf(SerializationError);
    expect(err.path).toBe('state.odd');
  });

  test('a function inside an error cause names the path through the cause', () => {
    const err = thrownBy(() =>
      encodeState({ state: { e: new Error('x', { cause: { f() {} } }) } }),
    ) as SerializationError;
    expect(err.message).toBe('Cannot store `state.e.cause.f`: it is a function (f)');
  });
});
