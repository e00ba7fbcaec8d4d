import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { decodeState, encodeState } from '../dist/codec/serializer.js';
import { registerClass, SerializationError } from '../dist/index.js';

const fixture = new URL('./fixtures/roundtrip.mjs', import.meta.url).pathname;

describe('round trip across a process boundary', () => {
  test('every supported type comes back exactly, with identity and prototypes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rs-roundtrip-'));
    execFileSync(process.execPath, [fixture, dir, 'save']);
    const out = JSON.parse(
      execFileSync(process.execPath, [fixture, dir, 'load'], { encoding: 'utf8' }),
    );
    expect(out).toEqual({
      restored: true,
      numbers: ['0', '-0', 'NaN', 'Infinity', '-1.5', '9007199254740994'],
      hasMissing: true,
      nothing: null,
      bigint: '1267650600228229401496703205376',
      negBig: '-1180591620717411303424',
      text: 'héllo \u0000 wörld 🎉',
      sparse: [3, true, false, true],
      map: [
        [1, 'one'],
        [1, true],
      ],
      set: ['a', true, 3],
      date: '2024-02-29T12:00:00.123Z',
      invalidDate: true,
      regexp: ['ab+c', 'gimsuy'],
      error: [true, 'out of range', 'E_RANGE', 'why', 'string'],
      typeError: [true, 'bad type'],
      views: {
        int8: ['Int8Array', '807f'],
        uint8: ['Uint8Array', '00ff'],
        clamped: ['Uint8ClampedArray', '00ff'],
        int16: ['Int16Array', '0080ff7f'],
        uint16: ['Uint16Array', 'ffff'],
        int32: ['Int32Array', '00000080ffffff7f'],
        uint32: ['Uint32Array', 'ffffffff'],
        float32: ['Float32Array', '0000c03f0000c07f'],
        float64: ['Float64Array', '182d4454fb2109400000000000000080'],
        bigInt64: ['BigInt64Array', '0000000000000080'],
        bigUint64: ['BigUint64Array', 'ffffffffffffffff'],
      },
      dataView: ['DataView', 2, 2],
      arrayBuffer: ['ArrayBuffer', '090807'],
      buffer: [true, 'buffer!'],
      big: [100_000, 99_999 / 3, 800_000],
      bigTail: [10, 99_990 / 3, true],
      shared: true,
      point: [true, 5],
      nullProto: [null, true],
      proto: [true, true, 'undefined', 'undefined'],
      self: true,
    });
  });
});

describe('values that cannot be stored', () => {
  class Model {
    weights = [1];
  }
  const cases: [string, Record<string, unknown>, string, string][] = [
    [
      'a function',
      { model: { onStep: function onStep() {} } },
      'state.model.onStep',
      'Cannot store `state.model.onStep`: it is a function (onStep)',
    ],
    [
      'an arrow in an array',
      { steps: [1, () => 2] },
      'state.steps[1]',
      'Cannot store `state.steps[1]`: it is a function',
    ],
    [
      'a symbol',
      { kind: Symbol('k') },
      'state.kind',
      'Cannot store `state.kind`: it is a symbol (Symbol(k))',
    ],
    [
      'a WeakMap',
      { cache: new WeakMap() },
      'state.cache',
      'Cannot store `state.cache`: it is a WeakMap, whose contents cannot be read',
    ],
    [
      'a WeakSet',
      { seen: new WeakSet() },
      'state.seen',
      'Cannot store `state.seen`: it is a WeakSet, whose contents cannot be read',
    ],
    [
      'a Promise',
      { pending: Promise.resolve(1) },
      'state.pending',
      'Cannot store `state.pending`: it is a Promise; store its awaited value instead',
    ],
    [
      'an unregistered class instance',
      { model: new Model() },
      'state.model',
      'Cannot store `state.model`: it is an instance of class `Model`; call registerClass(Model) to store it',
    ],
    [
      'a function as a Map value',
      { handlers: new Map([['a', () => 1]]) },
      'state.handlers<value 0>',
      'Cannot store `state.handlers<value 0>`: it is a function',
    ],
    [
      'a function in a Set',
      { fns: new Set([1, () => 1]) },
      'state.fns<item 1>',
      'Cannot store `state.fns<item 1>`: it is a function',
    ],
    [
      'a symbol key',
      { tagged: { [Symbol('id')]: 1 } },
      'state.tagged',
      'Cannot store `state.tagged`: it is an object with a symbol key (Symbol(id)), which cannot be stored',
    ],
    [
      'an odd key in the path',
      { 'my key': { f() {} } },
      'state["my key"].f',
      'Cannot store `state["my key"].f`: it is a function (f)',
    ],
  ];
  test.each(cases)('%s throws SerializationError naming its path', (_, state, path, message) => {
    let caught: unknown;
    try {
      encodeState({ state });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SerializationError);
    const err = caught as InstanceType<typeof SerializationError>;
    expect(err.code).toBe('CHECKPOINT_UNSERIALIZABLE');
    expect(err.path).toBe(path);
    expect(err.message).toBe(message);
  });

  test('a registered class restores its prototype; an unknown name on decode fails clearly', () => {
    class Vec {
      x = 1;
    }
    registerClass(Vec, 'test.Vec');
    const encoded = encodeState({ state: { v: new Vec() } });
    const decoded = decodeState(
      encoded.structure,
      encoded.segments.map((s) => s.slice().buffer),
    ) as { state: { v: Vec } };
    expect(decoded.state.v).toBeInstanceOf(Vec);
    expect(decoded.state.v.x).toBe(1);
  });

  test('registerClass rejects a name taken by another class', () => {
    class A {}
    class B {}
    registerClass(A, 'test.Same');
    expect(() => registerClass(B, 'test.Same')).toThrow(
      new TypeError('Class name `test.Same` is already registered to another class'),
    );
  });
});
