/**
 * Encoder of the portable state format (v2, #13.1; spec in docs/format.md). One recursive
 * pass validates and encodes: a value that cannot be stored throws a SerializationError
 * naming its path, and nothing is returned. The path is collected while the error unwinds,
 * so a state that encodes pays nothing for it.
 *
 * Over 400 lines: one pass that validates while it encodes; its cases follow
 * docs/format.md tag by tag.
 */
import { Buffer, constants } from 'node:buffer';
import { SerializationError } from '../../errors.js';
import { registeredNameOf } from '../classes.js';
import { isArrayIndex, mayHaveNamedProperties, namedKeys } from './named.js';
import {
  ERROR_KINDS,
  PACKED_MIN_LENGTH,
  SEGMENT_MIN_BYTES,
  STATE_MAGIC,
  Tag,
  VIEW_KINDS,
} from './tags.js';

/** A step from a container to a child: a property key or array index, a Map entry, a Set item. */
export type Step = string | number | { m: number; k: boolean } | { s: number };

/** Most bytes of one buffer a checkpoint stores: what one Uint8Array can view (4 GiB on Node 20). */
const MAX_SEGMENT_BYTES = constants.MAX_LENGTH;

const VIEW_KIND_BY_PROTOTYPE = new Map<object, number>();
for (const [kind, name] of VIEW_KINDS.entries()) {
  const View = name === 'Buffer' ? Buffer : (globalThis as Record<string, unknown>)[name];
  if (typeof View === 'function') VIEW_KIND_BY_PROTOTYPE.set(View.prototype as object, kind);
}
const ERROR_KIND_BY_NAME = new Map<string, number>(ERROR_KINDS.map((name, i) => [name, i]));
const isEnumerable = (obj: object, key: string) =>
  Object.prototype.propertyIsEnumerable.call(obj, key);

/** A failure on its way up: the steps are collected (innermost first) while it unwinds. */
export class PathFailure {
  readonly steps: Step[] = [];
  constructor(
    readonly what: string,
    readonly cause?: unknown,
  ) {}
}

/** V8's "Maximum call stack size exceeded" (JavaScriptCore says "call stack" too). */
export function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message);
}

/** Adds the step to a failure passing through a container; other errors pass unchanged. */
function through(err: unknown, step: Step): unknown {
  if (err instanceof PathFailure) {
    err.steps.push(step);
    return err;
  }
  if (isStackOverflow(err)) {
    const failure = new PathFailure('deep', err);
    failure.steps.push(step);
    return failure;
  }
  return err;
}

interface BufferUse {
  index: number;
  min: number;
  max: number;
}

/**
 * Object identities, kept from one encoding to the next (#13.2). A checkpoint encodes
 * mostly the same objects each time; updating their entries is about 5x faster here than
 * filling a fresh Map (85 against 400+ ms for S2's 600k objects), whose growth is most of
 * the cost. A WeakMap keeps no object alive: an entry costs ~28 bytes while its object
 * lives. Each encoding owns the ids from `epoch` up; lower ones are from earlier encodings.
 */
let identities = new WeakMap<object, number>();
let epoch = 0;
/** An encoding is under way: one started meanwhile (by a getter) keeps ids of its own. */
let encoding = false;

/** Ends an encoding: its ids become stale; small integers stay small (V8 Smis). */
function retireIds(encoder: { nested: boolean; objectCount: number }): void {
  // A getter of the state may run another encoding meanwhile (it saves something else):
  // that one has ids of its own, so this one's must not be touched under it.
  if (encoder.nested) return;
  encoding = false;
  epoch += encoder.objectCount;
  if (epoch > 2 ** 30) {
    identities = new WeakMap();
    epoch = 0;
  }
}

/** Capacity of the next encoding's first buffer: the last one's size, so saves rarely grow. */
let sizeHint = 64 * 1024;

function hasEnumerableKeys(obj: object): boolean {
  for (const _ in obj) return true;
  return false;
}

class Encoder {
  buf: Uint8Array;
  view: DataView;

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }
  pos = 0;
  /** Object ids of this encoding are `base + n`: lower ones in `ids` are stale. */
  readonly nested = encoding;
  readonly ids = this.nested ? new WeakMap<object, number>() : identities;
  readonly base = this.nested ? 0 : epoch;
  objectCount = 0;
  /** Ids this encoding referred back to, in the order written (format.md §2.4 lists them sorted). */
  readonly referenced: number[] = [];
  readonly keys = new Map<string, number>();
  readonly buffers = new Map<ArrayBufferLike, BufferUse>();
  // for-in is the fastest own-key walk of plain objects, unless someone made a property of
  // Object.prototype enumerable: then it would list inherited keys too.
  readonly forIn = !hasEnumerableKeys(Object.prototype);

  grow(need: number): void {
    let size = this.buf.byteLength * 2;
    while (size < this.pos + need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    if (this.pos + 1 > this.buf.byteLength) this.grow(1);
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    if (this.pos + 10 > this.buf.byteLength) this.grow(10);
    const buf = this.buf;
    let pos = this.pos;
    while (n > 0x7f) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n = n > 0x7fffffff ? Math.floor(n / 128) : n >>> 7;
    }
    buf[pos++] = n;
    this.pos = pos;
  }

  float(n: number): void {
    if (this.pos + 8 > this.buf.byteLength) this.grow(8);
    this.view.setFloat64(this.pos, n, true);
    this.pos += 8;
  }

  /** A string with its tag: latin1 when every code unit fits a byte, else UTF-16LE. */
  string(s: string): void {
    const length = s.length;
    let wide = false;
    for (let i = 0; i < length; i++) {
      if (s.charCodeAt(i) > 0xff) {
        wide = true;
        break;
      }
    }
    if (this.pos + 11 + length * (wide ? 2 : 1) > this.buf.byteLength) {
      this.grow(11 + length * (wide ? 2 : 1));
    }
    this.buf[this.pos++] = wide ? Tag.utf16 : Tag.latin1;
    this.varint(length);
    const buf = this.buf;
    let pos = this.pos;
    if (length > 64) {
      const out = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
      pos += out.write(s, pos, wide ? 'utf16le' : 'latin1');
    } else if (wide) {
      for (let i = 0; i < length; i++) {
        const c = s.charCodeAt(i);
        buf[pos++] = c & 0xff;
        buf[pos++] = c >>> 8;
      }
    } else {
      for (let i = 0; i < length; i++) buf[pos++] = s.charCodeAt(i);
    }
    this.pos = pos;
  }

  key(k: string): void {
    const index = this.keys.get(k);
    if (index !== undefined) {
      this.byte(Tag.keyRef);
      this.varint(index);
    } else {
      this.keys.set(k, this.keys.size);
      this.string(k);
    }
  }

  bigint(n: bigint): void {
    const negative = n < 0n;
    let hex = (negative ? -n : n).toString(16);
    if (hex.length % 2 === 1) hex = `0${hex}`;
    const length = hex.length / 2;
    this.byte(negative ? 1 : 0);
    this.varint(length);
    if (this.pos + length > this.buf.byteLength) this.grow(length);
    // Little-endian magnitude: the last hex pair is the lowest byte.
    for (let i = 0; i < length; i++) {
      const at = hex.length - 2 * (i + 1);
      this.buf[this.pos++] = Number.parseInt(hex.slice(at, at + 2), 16);
    }
  }

  value(v: unknown): void {
    switch (typeof v) {
      case 'number':
        if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
          this.byte(Tag.int);
          this.varint(((v << 1) ^ (v >> 31)) >>> 0);
        } else {
          this.byte(Tag.float);
          this.float(v);
        }
        return;
      case 'string':
        this.string(v);
        return;
      case 'boolean':
        this.byte(v ? Tag.true : Tag.false);
        return;
      case 'undefined':
        this.byte(Tag.undefined);
        return;
      case 'object':
        if (v === null) this.byte(Tag.null);
        else this.object(v);
        return;
      case 'bigint':
        this.byte(Tag.bigint);
        this.bigint(v);
        return;
      case 'function':
        throw new PathFailure(`a function${v.name ? ` (${v.name})` : ''}`);
      default:
        throw new PathFailure(`a symbol (${String(v)})`);
    }
  }

  object(obj: object): void {
    const proto = Object.getPrototypeOf(obj) as object | null;
    const id = this.ids.get(obj);
    if (id !== undefined && id >= this.base) {
      this.byte(Tag.ref);
      this.varint(id - this.base);
      this.referenced.push(id - this.base);
      return;
    }
    // Every object has an identity, Dates and views included: one referenced twice comes
    // back as one object, as structured clone (and format 1) gives it.
    this.ids.set(obj, this.base + this.objectCount++);
    if (proto === Date.prototype) {
      this.byte(Tag.date);
      this.float((obj as Date).getTime());
      return;
    }
    if (ArrayBuffer.isView(obj)) return this.arrayView(obj, proto);
    if (proto === Object.prototype) return this.properties(obj, Tag.object);
    if (proto === null) return this.properties(obj, Tag.nullObject);
    if (Array.isArray(obj)) return this.array(obj);
    if (proto === Map.prototype) return this.map(obj as Map<unknown, unknown>);
    if (proto === Set.prototype) return this.set(obj as Set<unknown>);
    if (proto === ArrayBuffer.prototype) {
      const buffer = obj as ArrayBuffer;
      this.byte(Tag.arrayBuffer);
      this.varint(this.useBuffer(buffer, 0, buffer.byteLength));
      return;
    }
    if (proto === RegExp.prototype) {
      const re = obj as RegExp;
      this.byte(Tag.regexp);
      this.string(re.source);
      this.string(re.flags);
      return;
    }
    if (proto === Number.prototype) {
      this.byte(Tag.boxedNumber);
      this.float(Number.prototype.valueOf.call(obj));
      return;
    }
    if (proto === String.prototype) {
      this.byte(Tag.boxedString);
      this.string(String.prototype.valueOf.call(obj));
      return;
    }
    if (proto === Boolean.prototype) {
      this.byte(Tag.boxedBoolean);
      this.byte(Boolean.prototype.valueOf.call(obj) ? 1 : 0);
      return;
    }
    if (proto === BigInt.prototype) {
      this.byte(Tag.boxedBigint);
      this.bigint(BigInt.prototype.valueOf.call(obj));
      return;
    }
    if (obj instanceof Map || obj instanceof Set) failSubclass(obj);
    if (obj instanceof Error) return this.error(obj, proto);
    const registered = registeredNameOf(proto);
    if (registered !== undefined) {
      this.byte(Tag.instance);
      this.key(registered);
      this.props(obj, Object.keys(obj));
      return;
    }
    throw new PathFailure(describeUnsupported(obj, proto));
  }

  /** A plain or null-prototype object: its own enumerable string keys, then END. */
  properties(obj: object, tag: number): void {
    checkSymbols(obj);
    this.byte(tag);
    const record = obj as Record<string, unknown>;
    if (this.forIn && tag === Tag.object) {
      let key = '';
      try {
        for (key in record) {
          this.key(key);
          this.value(record[key]);
        }
      } catch (err) {
        throw through(err, key);
      }
      this.byte(0);
    } else {
      this.props(obj, Object.keys(obj));
    }
  }

  props(obj: object, keys: readonly string[]): void {
    const record = obj as Record<string, unknown>;
    let key = '';
    try {
      for (key of keys) {
        this.key(key);
        this.value(record[key]);
      }
    } catch (err) {
      throw through(err, key);
    }
    this.byte(0);
  }

  // for...of, not arr[i]: an optimized indexed load seen with several array kinds makes V8
  // generalize the user's arrays (small integers to doubles, packed to holey), which slows
  // their code and bloats later saves.
  array(arr: unknown[]): void {
    const length = arr.length;
    const start = this.pos;
    // Written packed in one pass, which gives up (and rewinds) at the first item that does
    // not fit: a separate check of every item first cost as much as the writing (#13.2).
    if (length >= PACKED_MIN_LENGTH && typeof firstItem(arr) === 'number') {
      let stop = this.packed(arr as number[], Tag.intArray);
      if (stop === NOT_INT) stop = this.packed(arr as number[], Tag.numberArray);
      // A getter on an index may have shortened it while read: then item by item.
      if (stop === WRITTEN && arr.length >= length) return this.named(arr, start);
      this.pos = start;
    }
    this.byte(Tag.array);
    this.varint(length);
    let i = 0;
    let holey = false;
    try {
      for (const item of arr) {
        // A getter on an index may add items while it is read: `length` slots were announced.
        if (i === length) break;
        if (item === undefined && !(i in arr)) {
          holey = true;
          break;
        }
        this.value(item);
        i++;
      }
    } catch (err) {
      throw through(err, i);
    }
    // Outside the try: the sparse walk names the indices it fails at itself.
    if (holey) return this.sparseTail(arr, i, length, start);
    // ...or remove some: the slots left are holes.
    if (i < length) {
      this.byte(Tag.holes);
      this.varint(length - i);
    }
    this.named(arr, start);
  }

  /**
   * After an array's items, its own enumerable named properties, if it has any (#13.1):
   * then the array's tag at `start` becomes its named form. `keys`: already listed.
   */
  named(arr: unknown[], start: number, keys?: string[]): void {
    if (keys === undefined) {
      if (!mayHaveNamedProperties(arr)) return;
      keys = namedKeys(arr);
    }
    checkSymbols(arr, 'an array');
    if (keys.length === 0) return;
    const tag = this.buf[start];
    this.buf[start] =
      tag === Tag.array
        ? Tag.namedArray
        : tag === Tag.intArray
          ? Tag.namedIntArray
          : Tag.namedNumberArray;
    this.props(arr, keys);
  }

  /**
   * A dense array of numbers, packed (#13.2): `Tag.intArray` (zigzag varints) or
   * `Tag.numberArray` (float64s), no tag per item. Returns WRITTEN, or, having written
   * nothing, why not: NOT_INT or NOT_NUMBER at the first item that does not fit (a hole
   * included), NO_ROOM if the array grew while read.
   */
  packed(arr: readonly number[], tag: number): number {
    const ints = tag === Tag.intArray;
    const length = arr.length;
    const start = this.pos;
    for (let room = firstRoom(length); ; room = moreRoom(room, length)) {
      const need = 11 + (ints ? 5 : 8) * room;
      if (start + need > this.buf.byteLength) this.grow(need);
      this.byte(tag);
      this.varint(length);
      const end = ints
        ? packInts(this.buf, this.pos, arr, room)
        : packFloats(this.view, this.pos, arr, room);
      this.pos = start;
      if (end === NO_ROOM && room < length) continue;
      if (end < 0) return end;
      this.pos = end;
      return WRITTEN;
    }
  }

  /**
   * From the first hole on: runs of holes, and only the indices that exist; then the named
   * properties, found in the same walk (the array's tag is at `start`).
   */
  sparseTail(arr: unknown[], from: number, length: number, start: number): void {
    let next = from;
    let index = from;
    const named: string[] = [];
    try {
      for (const key of Object.keys(arr)) {
        index = Number(key);
        if (!(index >= from && String(index) === key && index < length)) {
          if (!isArrayIndex(key)) named.push(key);
          continue;
        }
        if (index > next) {
          this.byte(Tag.holes);
          this.varint(index - next);
        }
        this.value(arr[index]);
        next = index + 1;
      }
    } catch (err) {
      throw through(err, index);
    }
    if (length > next) {
      this.byte(Tag.holes);
      this.varint(length - next);
    }
    this.named(arr, start, named);
  }

  map(map: Map<unknown, unknown>): void {
    this.byte(Tag.map);
    this.varint(map.size);
    let i = 0;
    let isKey = true;
    try {
      map.forEach((v, k) => {
        isKey = true;
        this.value(k);
        isKey = false;
        this.value(v);
        i++;
      });
    } catch (err) {
      throw through(err, { m: i, k: isKey });
    }
  }

  set(set: Set<unknown>): void {
    this.byte(Tag.set);
    this.varint(set.size);
    let i = 0;
    try {
      set.forEach((v) => {
        this.value(v);
        i++;
      });
    } catch (err) {
      throw through(err, { s: i });
    }
  }

  error(err: Error, proto: object): void {
    const name = err.name;
    const kind = typeof name === 'string' ? ERROR_KIND_BY_NAME.get(name) : undefined;
    this.byte(Tag.error);
    this.byte(kind ?? 0);
    const registered = registeredNameOf(proto);
    if (registered === undefined) this.byte(0);
    else {
      this.byte(1);
      this.key(registered);
    }
    const record = err as unknown as Record<string, unknown>;
    let key = '';
    try {
      // First the non-enumerable own properties the constructors make, then END, then the
      // enumerable ones. A name that picks no standard constructor is kept as data.
      if (kind === undefined && typeof name === 'string' && !isEnumerable(err, 'name')) {
        key = 'name';
        this.key(key);
        this.string(name);
      }
      const message = Object.getOwnPropertyDescriptor(err, 'message');
      if (message !== undefined && 'value' in message && !message.enumerable) {
        key = 'message';
        this.key(key);
        this.string(String(message.value));
      }
      const stack = err.stack;
      if (typeof stack === 'string' && !isEnumerable(err, 'stack')) {
        key = 'stack';
        this.key(key);
        this.string(stack);
      }
      if (Object.hasOwn(err, 'cause') && !isEnumerable(err, 'cause')) {
        key = 'cause';
        this.key(key);
        this.value(record.cause);
      }
      this.byte(0);
      for (key of Object.keys(err)) {
        this.key(key);
        this.value(record[key]);
      }
    } catch (e) {
      throw through(e, key);
    }
    this.byte(0);
  }

  arrayView(view: ArrayBufferView, proto: object | null): void {
    const kind = proto === null ? undefined : VIEW_KIND_BY_PROTOTYPE.get(proto);
    if (kind === undefined) {
      throw new PathFailure(
        `a ${Object.prototype.toString.call(view).slice(8, -1)}, which a checkpoint cannot store`,
      );
    }
    this.byte(Tag.view);
    this.byte(kind);
    this.varint(this.useBuffer(view.buffer, view.byteOffset, view.byteLength));
    this.varint(view.byteOffset);
    this.varint(view.byteLength);
  }

  /** Notes that bytes [start, end) of `buffer` are used; returns the buffer's table index. */
  useBuffer(buffer: ArrayBufferLike, start: number, length: number): number {
    const end = start + length;
    let use = this.buffers.get(buffer);
    if (use === undefined) {
      use = { index: this.buffers.size, min: start, max: end };
      this.buffers.set(buffer, use);
    } else {
      use.min = Math.min(use.min, start);
      use.max = Math.max(use.max, end);
    }
    // One buffer is one segment, which a byte view must cover (#11.9).
    if (use.max - (use.min - (use.min % 8)) > MAX_SEGMENT_BYTES) {
      throw new PathFailure(
        `an array over ${use.max - use.min} bytes of one buffer, more than the ${MAX_SEGMENT_BYTES} a checkpoint stores per buffer here; split it into several arrays`,
      );
    }
    return use.index;
  }

  /**
   * The ids of objects referred back to, ascending, as gaps: the decoder keeps only those
   * objects instead of a list of every one (#13.2: S2 restore ~13% faster without it).
   */
  referencedList(): void {
    // Ids are below 2^30 (retireIds): a Uint32Array sorts them numerically, natively.
    const ids = new Uint32Array(this.referenced).sort();
    let distinct = 0;
    for (let i = 0; i < ids.length; i++) if (i === 0 || ids[i] !== ids[i - 1]) distinct++;
    this.varint(distinct);
    let last = -1;
    for (const id of ids) {
      if (id === last) continue;
      this.varint(last < 0 ? id : id - last);
      last = id;
    }
  }

  /** The buffer table, the referenced ids, then the footer: where the table starts, as a u64. */
  finish(segments: Uint8Array[]): void {
    const tableAt = this.pos;
    this.varint(this.buffers.size);
    for (const [buffer, use] of this.buffers) {
      // Round the start down to 8 so every view stays aligned for its element size.
      const start = use.min - (use.min % 8);
      const length = use.max - start;
      const bytes = new Uint8Array(buffer, start, length);
      if (length >= SEGMENT_MIN_BYTES) {
        this.byte(1);
        this.varint(start);
        this.varint(length);
        this.varint(segments.length);
        segments.push(bytes);
      } else {
        this.byte(0);
        this.varint(start);
        this.varint(length);
        if (this.pos + length > this.buf.byteLength) this.grow(length);
        this.buf.set(bytes, this.pos);
        this.pos += length;
      }
    }
    this.referencedList();
    if (this.pos + 8 > this.buf.byteLength) this.grow(8);
    this.view.setUint32(this.pos, tableAt % 2 ** 32, true);
    this.view.setUint32(this.pos + 4, Math.floor(tableAt / 2 ** 32), true);
    this.pos += 8;
  }
}

// The packing loops are functions of their own whose exit touches no property: V8 compiles
// such a loop while it runs (on-stack replacement), and a property first reached after the
// loop would throw that code away at once, for every one of the first saves (#13.2).
// NO_ROOM: more than `room` items; with `room` the length, the array grew while read.
const WRITTEN = 0;
const NOT_INT = -1;
const NOT_NUMBER = -2;
const NO_ROOM = -3;

/**
 * Room first reserved for a packed array's items: its length says nothing of a sparse
 * array's items (`a = [1]; a.length = 2 ** 32 - 1` would reserve 20 GB), so a long one
 * gets room for a first part, doubled while its items keep coming.
 */
const firstRoom = (length: number): number => Math.min(length, 2 ** 20);
const moreRoom = (room: number, length: number): number => Math.min(length, room * 2);

/**
 * Writes the zigzag varints of `arr`'s items from `pos`, `room` at most; the end, or
 * NOT_INT / NOT_NUMBER / NO_ROOM.
 */
function packInts(buf: Uint8Array, pos: number, arr: readonly number[], room: number): number {
  for (const n of arr) {
    if (room-- === 0) return NO_ROOM;
    if ((n | 0) !== n || (n === 0 && 1 / n < 0))
      return typeof n === 'number' ? NOT_INT : NOT_NUMBER;
    let u = ((n << 1) ^ (n >> 31)) >>> 0;
    while (u > 0x7f) {
      buf[pos++] = (u & 0x7f) | 0x80;
      u >>>= 7;
    }
    buf[pos++] = u;
  }
  return pos;
}

/** Writes `arr`'s items as float64s from `pos`, `room` at most; the end, or NOT_NUMBER / NO_ROOM. */
function packFloats(view: DataView, pos: number, arr: readonly number[], room: number): number {
  for (const n of arr) {
    if (room-- === 0) return NO_ROOM;
    if (typeof n !== 'number') return NOT_NUMBER;
    view.setFloat64(pos, n, true);
    pos += 8;
  }
  return pos;
}

function firstItem(arr: readonly unknown[]): unknown {
  for (const item of arr) return item;
  return undefined;
}

function checkSymbols(obj: object, what = 'an object'): void {
  for (const symbol of Object.getOwnPropertySymbols(obj)) {
    if (Object.prototype.propertyIsEnumerable.call(obj, symbol)) {
      throw new PathFailure(
        `${what} with a symbol key (${String(symbol)}), which cannot be stored`,
      );
    }
  }
}

function failSubclass(obj: object): never {
  const registered = registeredNameOf(Object.getPrototypeOf(obj) as object);
  const what = registered ?? (obj.constructor as { name?: string } | undefined)?.name ?? '?';
  throw new PathFailure(
    `an instance of \`${what}\`, a subclass of Map or Set, which cannot keep its class`,
  );
}

export function describeUnsupported(obj: object, proto: object): string {
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  const className = typeof name === 'string' && name !== '' ? name : undefined;
  if (obj instanceof WeakMap || obj instanceof WeakSet || obj instanceof WeakRef) {
    return `a ${className}, whose contents cannot be read`;
  }
  if (obj instanceof Promise) return 'a Promise; store its awaited value instead';
  if (typeof SharedArrayBuffer === 'function' && obj instanceof SharedArrayBuffer) {
    return 'a SharedArrayBuffer; store a typed array over it';
  }
  if (className === undefined) {
    return 'an object with a custom prototype; use a plain object or registerClass()';
  }
  return `an instance of class \`${className}\`; call registerClass(${className}) to store it`;
}

/** `state.model.weights[3]`, `state.cache<key 2>`, `state.seen<item 0>`: the first step bare. */
export function formatPath(steps: readonly Step[]): string {
  let out = '';
  for (const step of steps) {
    if (out === '' && typeof step === 'string') out = step;
    else if (typeof step === 'number') out += `[${step}]`;
    else if (typeof step === 'string') {
      out += /^[A-Za-z_$][\w$]*$/.test(step) ? `.${step}` : `[${JSON.stringify(step)}]`;
    } else if ('m' in step) out += step.k ? `<key ${step.m}>` : `<value ${step.m}>`;
    else out += `<item ${step.s}>`;
  }
  return out;
}

/** One encoded state: the structure and the out-of-band segments it refers to. */
export interface PortableState {
  structure: Buffer;
  /** Raw bytes of large array buffers, as views on the live memory (not copies). */
  segments: Uint8Array[];
}

/**
 * Encodes `envelope`, an object whose keys name the roots in error paths (`state`,
 * `tracked`…). Throws SerializationError naming the path of the first value that cannot
 * be stored.
 */
export function encodePortable(
  envelope: Record<string, unknown>,
  capacity?: number,
): PortableState {
  // A caller with small values (the journal: a record per step) says how small; without it
  // the buffer starts at the last state's size, so state saves rarely grow it.
  const encoder = new Encoder(capacity ?? sizeHint);
  for (const b of STATE_MAGIC) encoder.byte(b);
  encoding = true;
  try {
    encoder.value(envelope);
  } catch (err) {
    retireIds(encoder);
    const failure =
      err instanceof PathFailure
        ? err
        : isStackOverflow(err)
          ? new PathFailure('deep', err)
          : undefined;
    if (failure === undefined) throw err;
    // Collected innermost first.
    const steps = failure.steps.reverse();
    if (failure.what === 'deep') throw tooDeep(steps, failure.cause);
    const path = formatPath(steps);
    throw new SerializationError(`Cannot store \`${path}\`: it is ${failure.what}`, path);
  }
  retireIds(encoder);
  const segments: Uint8Array[] = [];
  encoder.finish(segments);
  if (capacity === undefined) {
    sizeHint = Math.max(64 * 1024, Math.min(encoder.pos + (encoder.pos >>> 4), 2 ** 30));
  }
  const { buf, pos } = encoder;
  return { structure: Buffer.from(buf.buffer, buf.byteOffset, pos), segments };
}

/** The state is deeper than the stack left to the caller of save() (#11.10). */
export function tooDeep(path: readonly Step[], cause: unknown): SerializationError {
  // The path down to where the stack ran out is thousands of steps: its start says where.
  const shown = formatPath(path.slice(0, 8));
  const at = path.length > 0 ? ` (at \`${shown}…\`, ${path.length} levels down)` : '';
  return new SerializationError(
    `Cannot store the state: it is nested too deeply for the current call stack${at}. Save from a shallower point of your program, store deep chains as arrays, or raise the stack size (node --stack-size=<kB>, e.g. 4000; the default is 984)`,
    shown,
    { cause },
  );
}
