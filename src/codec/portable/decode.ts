/**
 * Decoder of the portable state format (v2, #13.1; spec in docs/format.md). Safe on any
 * bytes: no user code runs (properties are defined, never set through a setter; class
 * instances get their registered prototype without a constructor call), no prototype is
 * touched (`__proto__` is an own data property), every count is checked against the bytes
 * left before anything is allocated for it, and nesting is followed with an explicit stack,
 * so depth cannot overflow the call stack.
 *
 * Over 400 lines: one iterative decoder; its frames share one explicit stack and one
 * bounds check.
 */
import { Buffer } from 'node:buffer';
import { registeredPrototype } from '../classes.js';
import { isArrayIndex } from './named.js';
import { END, ERROR_KINDS, STATE_MAGIC, Tag, VIEW_KINDS } from './tags.js';

type LatinSlice = (this: Buffer, start: number, end: number) => string;

/** The bytes are not a valid v2 state (the container reports it as corrupt). */
export class FormatError extends Error {}

const fail = (what: string): never => {
  throw new FormatError(what);
};

type ViewConstructor = new (buffer: ArrayBuffer, offset: number, length: number) => object;
const VIEWS = VIEW_KINDS.map((name) =>
  name === 'Buffer'
    ? undefined
    : ((globalThis as Record<string, unknown>)[name] as ViewConstructor | undefined),
);
const ELEMENT_BYTES = VIEW_KINDS.map((name) =>
  name === 'DataView' || name === 'Buffer'
    ? 1
    : ((globalThis as unknown as Record<string, { BYTES_PER_ELEMENT?: number } | undefined>)[name]
        ?.BYTES_PER_ELEMENT ?? 1),
);
const ERRORS = ERROR_KINDS.map(
  (name) => (globalThis as Record<string, unknown>)[name] as ErrorConstructor,
);

/**
 * Whether filling objects and arrays by plain assignment runs no setter: no accessor (or
 * read-only property) on Object.prototype or Array.prototype. ~3 µs: a caller decoding many
 * small values in a row (the journal) asks once and passes the answer.
 */
export function assignmentIsSafe(): boolean {
  return onlyDataProperties(Object.prototype) && onlyDataProperties(Array.prototype);
}

/** Whether plain assignment to `obj` could only reach data: no accessor but `__proto__`. */
function onlyDataProperties(proto: object): boolean {
  for (const key of Object.getOwnPropertyNames(proto)) {
    if (key === '__proto__') continue;
    const d = Object.getOwnPropertyDescriptor(proto, key);
    if (d !== undefined && (d.get !== undefined || d.set !== undefined)) return false;
    if (d !== undefined && !d.writable) return false;
  }
  return true;
}

/**
 * The decoder's own lists. Array.prototype's push would run an index setter someone put on
 * Array.prototype (then `assign` is false): those lists get a prototype without one.
 */
const SAFE_LIST = Object.create(null, {
  push: { value: Array.prototype.push },
  pop: { value: Array.prototype.pop },
}) as object;
// Each list keeps its own `[]` literal: one shared allocation site would make V8 give them
// all the most general element kind, a third slower here.
const safeList = <T>(): T[] => Object.setPrototypeOf([], SAFE_LIST) as T[];

// A descriptor of its own keys only: one inheriting a `get` someone put on Object.prototype
// would be refused (or worse, read) by defineProperty.
const define = (obj: object, key: string, value: unknown, enumerable = true) =>
  Object.defineProperty(obj, key, {
    __proto__: null,
    value,
    writable: true,
    configurable: true,
    enumerable,
  } as PropertyDescriptor);

/**
 * Short latin1 strings met in one decode, by a hash of their bytes: a value repeated over
 * many objects (a kind, a Map key) comes back as one string, not one allocation per object
 * (#13.2: S2 decodes 1M strings, 800k of them repeats).
 */
const SHORT_STRING = 24;
const STRING_SLOTS = 4096;

function shortSlot(bytes: Uint8Array, pos: number, length: number): number {
  let h = 0x811c9dc5 ^ length;
  for (let i = pos; i < pos + length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h ^ (h >>> 15)) & (STRING_SLOTS - 1);
}

function sameLatin1(s: string, bytes: Uint8Array, pos: number, length: number): boolean {
  if (s.length !== length) return false;
  for (let i = 0; i < length; i++) if (s.charCodeAt(i) !== bytes[pos + i]) return false;
  return true;
}

/**
 * Reads `n` zigzag varints, each an int32, from `bytes[pos, end)` into `out`; returns the
 * position after them. A loop of its own, so it is optimised on its first long run (#13.2).
 */
function readInts(
  bytes: Uint8Array,
  pos: number,
  end: number,
  n: number,
  out: number[],
  assign: boolean,
): number {
  for (let i = 0; i < n; i++) {
    let b = pos < end ? bytes[pos++]! : fail('truncated');
    let u = b & 0x7f;
    for (let shift = 7; b >= 0x80; shift += 7) {
      b = pos < end ? bytes[pos++]! : fail('truncated');
      // The fifth byte holds bits 28-31: anything above is out of the int32 range.
      if (shift === 28 && b > 0x0f) fail('int out of range');
      u |= (b & 0x7f) << shift;
    }
    const value = (u >>> 1) ^ -(u & 1);
    if (assign) out[i] = value;
    else define(out, String(i), value);
  }
  return pos;
}

/**
 * Gives `arr` holes up to `length`. `arr.length = n` makes V8 allocate all n slots, which
 * keeps a preallocated `new Array(n)` as fast as the user had it, but lets a file claim
 * memory it does not hold (1.2 GB for 10,000 nested arrays announcing 15,000 in 60 kB).
 * Not `dense`: an item stored at the end then deleted leaves the array in V8's sparse form,
 * nothing allocated for the holes.
 */
function trailingHoles(arr: unknown[], length: number, assign: boolean, dense: boolean): void {
  if (dense) {
    arr.length = length;
    return;
  }
  if (assign) arr[length - 1] = undefined;
  else define(arr, String(length - 1), undefined);
  delete arr[length - 1];
}

/** Reads `n` float64s from `pos` into `out`; returns the position after them. */
function readFloats(
  data: DataView,
  pos: number,
  n: number,
  out: number[],
  assign: boolean,
): number {
  for (let i = 0; i < n; i++, pos += 8) {
    if (assign) out[i] = data.getFloat64(pos, true);
    else define(out, String(i), data.getFloat64(pos, true));
  }
  return pos;
}

/**
 * An array of `n` slots to fill in order. Allocated at its full size at once: growing a
 * large array step by step costs more than filling it (here 8.9 against 3.5 ms for 100k
 * items, #13.2). Without plain assignment the slots are defined one by one instead.
 */
function sized<T>(n: number, assign: boolean): T[] {
  return assign ? new Array<T>(n) : [];
}

/**
 * Frames of the explicit stack; `hidden` is an error's non-enumerable section (then
 * `define`); `named` an array's named properties, after its items.
 */
const Frame = { array: 0, object: 1, define: 2, hidden: 3, map: 4, set: 5, named: 6 } as const;

/** Decodes a v2 state chunk; `segments` become the buffers of the restored out-of-band arrays. */
export function decodePortable(
  bytes: Uint8Array,
  segments: readonly ArrayBuffer[],
  assignSafe?: boolean,
): unknown {
  const size = bytes.byteLength;
  if (size < STATE_MAGIC.length + 8 || STATE_MAGIC.some((b, i) => bytes[i] !== b)) {
    fail('not a v2 state (bad magic)');
  }
  const data = new DataView(bytes.buffer, bytes.byteOffset, size);
  const tableAt = data.getUint32(size - 8, true) + data.getUint32(size - 4, true) * 2 ** 32;
  if (tableAt < STATE_MAGIC.length || tableAt > size - 8) fail('buffer table out of range');
  // Plain assignment is the fast way to fill objects and arrays; it is safe only while no
  // setter on their prototypes could run (someone could have defined one).
  const assign = assignSafe ?? assignmentIsSafe();
  const latin1 = Buffer.from(bytes.buffer, bytes.byteOffset, size);
  const latin1Slice = (latin1 as unknown as { latin1Slice?: LatinSlice }).latin1Slice;

  // Own data slots (Array.from defines them), so storing in one runs no setter. Only for a
  // structure large enough to repay them: the journal decodes one small record per step.
  const cacheStrings = size >= 64 * 1024;
  const shortStrings = cacheStrings ? Array.from<string | undefined>({ length: STRING_SLOTS }) : [];
  let pos = tableAt;
  let end = size - 8;

  const varint = (): number => {
    let b = pos < end ? bytes[pos++]! : fail('truncated');
    if (b < 0x80) return b;
    let n = b & 0x7f;
    let scale = 0x80;
    for (let i = 1; i < 8; i++) {
      b = pos < end ? bytes[pos++]! : fail('truncated');
      n += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (n > Number.MAX_SAFE_INTEGER) fail('varint too large');
        return n;
      }
      scale *= 0x80;
    }
    return fail('varint too long');
  };
  /** A count of things each taking at least `unit` bytes: bounded by the bytes left. */
  const count = (unit: number): number => {
    const n = varint();
    if (n * unit > end - pos) fail(`a count of ${n} where ${end - pos} bytes are left`);
    return n;
  };
  const float = (): number => {
    if (pos + 8 > end) fail('truncated');
    const n = data.getFloat64(pos, true);
    pos += 8;
    return n;
  };
  const stringBody = (tag: number): string => {
    const length = count(tag === Tag.utf16 ? 2 : 1);
    if (tag === Tag.latin1) {
      // Node's and Bun's Buffer slice without an encoding switch; short ones by hand (a
      // string built char by char leaves a garbage string per char).
      if (length > 2) {
        let slot = -1;
        if (length <= SHORT_STRING && cacheStrings) {
          slot = shortSlot(bytes, pos, length);
          const seen = shortStrings[slot];
          if (seen !== undefined && sameLatin1(seen, bytes, pos, length)) {
            pos += length;
            return seen;
          }
        }
        pos += length;
        const s =
          latin1Slice !== undefined
            ? latin1Slice.call(latin1, pos - length, pos)
            : latin1.toString('latin1', pos - length, pos);
        if (slot >= 0) shortStrings[slot] = s;
        return s;
      }
      if (length === 0) return '';
      const first = bytes[pos++]!;
      return length === 1 ? String.fromCharCode(first) : String.fromCharCode(first, bytes[pos++]!);
    }
    if (length > 32) {
      pos += 2 * length;
      return latin1.toString('utf16le', pos - 2 * length, pos);
    }
    let s = '';
    for (let i = 0; i < length; i++, pos += 2) {
      s += String.fromCharCode(bytes[pos]! | (bytes[pos + 1]! << 8));
    }
    return s;
  };
  const string = (): string => {
    const tag = pos < end ? bytes[pos++]! : fail('truncated');
    return tag === Tag.latin1 || tag === Tag.utf16 ? stringBody(tag) : fail('expected a string');
  };
  const bigint = (): bigint => {
    const sign = pos < end ? bytes[pos++]! : fail('truncated');
    if (sign > 1) fail('bad bigint sign');
    const length = count(1);
    let hex = '';
    for (let i = pos + length - 1; i >= pos; i--) hex += bytes[i]!.toString(16).padStart(2, '0');
    pos += length;
    const n = length === 0 ? 0n : BigInt(`0x${hex}`);
    return sign === 1 ? -n : n;
  };

  // The buffer table first: views anywhere in the value refer to it.
  const buffers: ArrayBuffer[] = assign ? [] : safeList();
  const starts: number[] = assign ? [] : safeList();
  const usedSegments = new Set<number>();
  for (let i = count(3); i > 0; i--) {
    const mode = pos < end ? bytes[pos++]! : fail('truncated');
    const start = varint();
    const length = varint();
    if (mode === 0) {
      if (length > end - pos) fail('truncated buffer');
      // A copy of its own (a Buffer's slice() would be a view on the structure).
      const own = new Uint8Array(length);
      own.set(bytes.subarray(pos, pos + length));
      buffers.push(own.buffer);
      pos += length;
    } else if (mode === 1) {
      const index = varint();
      const segment = segments[index];
      if (segment === undefined || usedSegments.has(index)) fail(`bad segment ${index}`);
      if (segment!.byteLength !== length) fail(`segment ${index} has the wrong length`);
      usedSegments.add(index);
      buffers.push(segment!);
    } else fail(`bad buffer mode ${mode}`);
    starts.push(start);
  }
  // The ids of objects referred back to, ascending: only those objects are kept.
  const referencedIds: number[] = assign ? [] : safeList();
  for (let i = count(1), id = -1; i > 0; i--) {
    const gap = varint();
    if (id >= 0 && gap === 0) fail('referenced ids out of order');
    id = id < 0 ? gap : id + gap;
    referencedIds.push(id);
  }
  if (pos !== size - 8) fail('bytes after the referenced ids');

  pos = STATE_MAGIC.length;
  end = tableAt;
  const keys: string[] = assign ? [] : safeList();
  // Objects met so far (the next one's id), and those of them referred back to.
  let met = 0;
  const referenced: unknown[] = assign ? [] : safeList();
  let nextReferenced = referencedIds.length > 0 ? referencedIds[0]! : -1;
  /** Gives `obj` the next id; keeps it if a reference to that id is to come. */
  const meet = (obj: unknown): void => {
    if (met++ !== nextReferenced) return;
    referenced.push(obj);
    nextReferenced =
      referenced.length < referencedIds.length ? referencedIds[referenced.length]! : -1;
  };
  /** The object of id `id`, met already and listed as referenced. */
  const referencedObject = (id: number): unknown => {
    let low = 0;
    let high = referenced.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const at = referencedIds[mid]!;
      if (at === id) return referenced[mid];
      if (at < id) low = mid + 1;
      else high = mid - 1;
    }
    return fail(`bad reference ${id}`);
  };
  // The explicit stack: one frame per container still being filled.
  const kinds: number[] = assign ? [] : safeList();
  const targets: object[] = assign ? [] : safeList();
  const counters: number[] = assign ? [] : safeList(); // arrays: next index; maps: 0 awaiting a key, 1 a value
  const lengths: number[] = assign ? [] : safeList();
  const pending: unknown[] = assign ? [] : safeList(); // maps: the key read
  // Slots allocated ahead for arrays still to be filled, all arrays together, are at most the
  // bytes of the structure: nested arrays could each claim the bytes left (an input's square).
  let room = end - pos;
  // Trailing holes given as a dense length (fast arrays, as the user had them), all arrays
  // together: 8M slots (64 MB), or 8 a byte of a larger structure; past that, sparse.
  let denseHoles = Math.max(2 ** 23, 8 * (end - pos));

  const key = (tag: number): string => {
    if (tag === Tag.keyRef) {
      const index = varint();
      return index < keys.length ? keys[index]! : fail(`bad key reference ${index}`);
    }
    if (tag !== Tag.latin1 && tag !== Tag.utf16) fail(`bad key tag ${tag}`);
    const k = stringBody(tag);
    keys.push(k);
    return k;
  };
  /** A class name (a key) and the prototype registered under it. */
  const classPrototype = (): object => {
    const name = key(pos < end ? bytes[pos++]! : fail('truncated'));
    return (
      registeredPrototype(name) ??
      fail(
        `class \`${name}\` is not registered in this process; call registerClass() before restore()`,
      )
    );
  };
  const push = (kind: number, target: object, length: number) => {
    kinds.push(kind);
    targets.push(target);
    counters.push(0);
    lengths.push(length);
    pending.push(undefined);
  };
  const properties = (kind: number, target: object): object => {
    meet(target);
    push(kind, target, 0);
    return target;
  };

  const value = (): unknown => {
    const tag = pos < end ? bytes[pos++]! : fail('truncated');
    switch (tag) {
      case Tag.undefined:
        return undefined;
      case Tag.null:
        return null;
      case Tag.false:
        return false;
      case Tag.true:
        return true;
      case Tag.int: {
        const u = varint();
        if (u > 0xffffffff) fail('int out of range');
        return (u >>> 1) ^ -(u & 1);
      }
      case Tag.float:
        return float();
      case Tag.bigint:
        return bigint();
      case Tag.latin1:
      case Tag.utf16:
        return stringBody(tag);
      case Tag.ref: {
        const id = varint();
        return referencedObject(id);
      }
      case Tag.array:
      case Tag.namedArray: {
        const length = varint();
        if (length > 2 ** 32 - 1) fail('array too long');
        // Each item takes a byte at least, unless runs of holes stand for many: a length the
        // bytes cannot hold is allocated as it is filled.
        const ahead = length <= end - pos && length <= room;
        if (ahead) room -= length;
        const arr: unknown[] = ahead ? sized(length, assign) : [];
        meet(arr);
        // The named properties' frame below the items' one: read once the items are.
        if (tag === Tag.namedArray) push(Frame.named, arr, 0);
        if (length > 0) push(Frame.array, arr, length);
        return arr;
      }
      case Tag.intArray:
      case Tag.namedIntArray: {
        const n = count(1);
        const arr = sized<number>(n, assign);
        meet(arr);
        pos = readInts(bytes, pos, end, n, arr, assign);
        if (tag === Tag.namedIntArray) push(Frame.named, arr, 0);
        return arr;
      }
      case Tag.numberArray:
      case Tag.namedNumberArray: {
        const n = count(8);
        const arr = sized<number>(n, assign);
        meet(arr);
        pos = readFloats(data, pos, n, arr, assign);
        if (tag === Tag.namedNumberArray) push(Frame.named, arr, 0);
        return arr;
      }
      case Tag.object:
        return properties(assign ? Frame.object : Frame.define, {});
      case Tag.nullObject:
        return properties(Frame.object, Object.create(null) as object);
      case Tag.instance: {
        return properties(Frame.define, Object.create(classPrototype()) as object);
      }
      case Tag.map: {
        const map = new Map();
        meet(map);
        const n = count(2);
        if (n > 0) push(Frame.map, map, n);
        return map;
      }
      case Tag.set: {
        const set = new Set();
        meet(set);
        const n = count(1);
        if (n > 0) push(Frame.set, set, n);
        return set;
      }
      case Tag.date: {
        const date = new Date(float());
        meet(date);
        return date;
      }
      case Tag.regexp: {
        const source = string();
        const flags = string();
        let re: RegExp;
        try {
          re = new RegExp(source, flags);
        } catch (err) {
          return fail(`bad regular expression (${(err as Error).message})`);
        }
        meet(re);
        return re;
      }
      case Tag.boxedNumber:
        return box(Object(float()));
      case Tag.boxedString:
        return box(Object(string()));
      case Tag.boxedBoolean: {
        const b = pos < end ? bytes[pos++]! : fail('truncated');
        return box(Object(b === 1));
      }
      case Tag.boxedBigint:
        return box(Object(bigint()));
      case Tag.error: {
        const kind = pos < end ? bytes[pos++]! : fail('truncated');
        const Ctor = ERRORS[kind] ?? fail(`bad error kind ${kind}`);
        const hasClass = pos < end ? bytes[pos++]! : fail('truncated');
        const err = new Ctor();
        // The constructor's own stack describes this decoder: only the stored one is kept.
        delete (err as { stack?: string }).stack;
        if (hasClass === 1) {
          Object.setPrototypeOf(err, classPrototype());
        } else if (hasClass !== 0) fail('bad error class flag');
        return properties(Frame.hidden, err);
      }
      case Tag.arrayBuffer: {
        const index = varint();
        const buffer = buffers[index] ?? fail(`bad buffer ${index}`);
        if (starts[index] !== 0) fail('array buffer stored in part');
        meet(buffer);
        return buffer;
      }
      case Tag.view: {
        const kind = pos < end ? bytes[pos++]! : fail('truncated');
        if (kind >= VIEW_KINDS.length) fail(`bad view kind ${kind}`);
        const index = varint();
        const buffer = buffers[index] ?? fail(`bad buffer ${index}`);
        const offset = varint() - starts[index]!;
        const length = varint();
        const unit = ELEMENT_BYTES[kind]!;
        if (offset < 0 || offset + length > buffer!.byteLength || offset % unit || length % unit) {
          fail('view out of its buffer');
        }
        let view: object;
        if (VIEW_KINDS[kind] === 'Buffer') view = Buffer.from(buffer!, offset, length);
        else {
          const View = VIEWS[kind] ?? fail(`${VIEW_KINDS[kind]} is not available here`);
          view = new View!(buffer!, offset, kind === 11 ? length : length / unit);
        }
        meet(view);
        return view;
      }
      default:
        return fail(`bad tag ${tag} at byte ${pos - 1}`);
    }
  };
  const box = (boxed: object): object => {
    meet(boxed);
    return boxed;
  };

  const root = value();
  let top = kinds.length - 1;
  while (top >= 0) {
    const target = targets[top]!;
    switch (kinds[top]) {
      case Frame.array: {
        const arr = target as unknown[];
        const length = lengths[top]!;
        let i = counters[top]!;
        if (bytes[pos] === Tag.holes && pos < end) {
          pos++;
          i += varint();
          if (i > length) fail('holes past the array length');
        } else {
          const item = value();
          if (assign) arr[i] = item;
          else define(arr, String(i), item);
          i++;
        }
        counters[top] = i;
        if (i === length) {
          const gap = length - arr.length;
          if (gap > 0) {
            const dense = gap <= denseHoles;
            if (dense) denseHoles -= gap;
            trailingHoles(arr, length, assign, dense);
          }
          lengths[top] = -1;
        }
        break;
      }
      case Frame.map:
      case Frame.set: {
        const item = value();
        if (kinds[top] === Frame.set) {
          (target as Set<unknown>).add(item);
          if (--lengths[top]! === 0) lengths[top] = -1;
        } else if (counters[top] === 0) {
          pending[top] = item;
          counters[top] = 1;
        } else {
          (target as Map<unknown, unknown>).set(pending[top], item);
          pending[top] = undefined;
          counters[top] = 0;
          if (--lengths[top]! === 0) lengths[top] = -1;
        }
        break;
      }
      default: {
        const tag = pos < end ? bytes[pos++]! : fail('truncated');
        if (tag === END) {
          if (kinds[top] === Frame.hidden) kinds[top] = Frame.define;
          else lengths[top] = -1;
          break;
        }
        const k = key(tag);
        // An index or `length` would rewrite the items, or fail to define.
        if (kinds[top] === Frame.named && (k === 'length' || isArrayIndex(k))) {
          fail(`array property \`${k}\` is not a named property`);
        }
        const item = value();
        const kind = kinds[top];
        if (kind === Frame.object && k !== '__proto__') {
          (target as Record<string, unknown>)[k] = item;
        } else define(target, k, item, kind !== Frame.hidden);
      }
    }
    // Pop finished frames; a frame pushed by value() above is now on top instead.
    while (top >= 0 && lengths[top] === -1 && top === kinds.length - 1) {
      kinds.pop();
      targets.pop();
      counters.pop();
      lengths.pop();
      pending.pop();
      top--;
    }
    top = kinds.length - 1;
  }
  if (pos !== end) fail('bytes after the state');
  return root;
}
