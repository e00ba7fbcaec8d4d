/**
 * Format v1's state encoding, kept to restore v1 files wherever node:v8 works (#13.1), and
 * as the baseline the benchmark compares format v2 with. Format v1's state serializer:
 * node:v8's structured clone (the fastest exact encoder measured here:
 * Map, Set, Date, RegExp, BigInt, -0, NaN, sparse arrays, cycles and shared references)
 * plus three things v8 does not do on its own:
 * - a validating walk first, so a function, symbol, WeakMap, Promise or unregistered class
 *   instance fails with a SerializationError naming its path, before anything is written;
 * - "fixups" recorded by that walk, restoring what v8 drops: prototypes of registered
 *   classes, null prototypes, and the extra properties and names of errors;
 * - large typed arrays written out of band as raw segments, so the v8 stream stays small
 *   and their bytes can be copied (or written) at memory speed.
 *
 * Over 400 lines: format 1 as it was, frozen (its encoder stays to build format-1 files
 * for tests).
 */
import { constants } from 'node:buffer';
import v8 from 'node:v8';
import { SerializationError } from '../errors.js';
import { registeredNameOf, registeredPrototype } from './classes.js';
import {
  describeUnsupported,
  formatPath,
  isStackOverflow,
  type Step,
  tooDeep,
} from './portable/encode.js';
import { ERROR_KINDS } from './portable/tags.js';
import type { EncodedState } from './serializer.js';

/** A step from a container to a child: a property key or array index, a Map entry, a Set item. */

/** What v8 loses, reapplied after decoding (in discovery order: parents before children). */
type Fixup =
  | { p: Step[]; c: string } // prototype of a registered class
  | { p: Step[]; n: true } // null prototype
  | { p: Step[]; e: Record<string, unknown>; name?: string }; // error extras

/** Most bytes of one buffer a checkpoint stores: what one Uint8Array can view (4 GiB on Node 20). */
const MAX_SEGMENT_BYTES = constants.MAX_LENGTH;

/** Views whose buffer covers at least this many bytes are stored out of band. */
const SEGMENT_MIN_BYTES = 64 * 1024;

const ERROR_OWN_KEYS = new Set(['stack', 'message', 'cause']);
const STANDARD_ERROR_NAMES = new Set<string>(ERROR_KINDS);

const LEAF_PROTOTYPES = new Set<object>([
  Date.prototype,
  RegExp.prototype,
  ArrayBuffer.prototype,
  Number.prototype,
  String.prototype,
  Boolean.prototype,
  BigInt.prototype,
]);

/** Constructors of the views the host-object hook writes, by stable tag (never reorder). */
const VIEW_TYPES = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
  Buffer,
] as const;
const TAG_BY_PROTOTYPE = new Map<object, number>(VIEW_TYPES.map((C, i) => [C.prototype, i]));

interface BufferUse {
  min: number;
  max: number;
  views: number;
}

interface Segment {
  index: number;
  start: number;
}

/** Walks a state once: validates it, records fixups and how array buffers are shared. */
/** True for values the walk must look into or reject: objects, functions, symbols. */
function needsVisit(value: unknown): boolean {
  const t = typeof value;
  return t === 'object' ? value !== null : t === 'function' || t === 'symbol';
}

class StateInspector {
  readonly fixups: Fixup[] = [];
  readonly buffers = new Map<ArrayBufferLike, BufferUse>();
  readonly #seen = new Set<object>();
  readonly #path: Step[] = [];
  /** Where the walk is: the steps from the root. */
  get path(): readonly Step[] {
    return this.#path;
  }
  // for-in is the fastest own-key walk of plain objects, unless someone made a property of
  // Object.prototype enumerable: then it would list inherited keys too.
  readonly #forIn = !hasEnumerableKeys(Object.prototype);

  visit(value: unknown): void {
    switch (typeof value) {
      case 'object':
        if (value !== null) this.#visitObject(value);
        return;
      case 'function':
        this.#fail(`a function${value.name ? ` (${value.name})` : ''}`);
        return;
      case 'symbol':
        this.#fail(`a symbol (${String(value)})`);
        return;
      default:
        return;
    }
  }

  #visitChild(step: Step, child: unknown): void {
    this.#path.push(step);
    this.visit(child);
    this.#path.pop();
  }

  #visitObject(obj: object): void {
    const proto = Object.getPrototypeOf(obj) as object | null;
    // Leaves first: they hold nothing to visit, so they need no cycle bookkeeping either.
    if (proto !== null && LEAF_PROTOTYPES.has(proto)) return;
    if (proto === Object.prototype) {
      if (this.#hasObjectProperty(obj) && this.#firstVisit(obj)) this.#visitProperties(obj);
      else this.#checkSymbols(obj);
      return;
    }
    if (Array.isArray(obj)) {
      if (hasObjectItem(obj) && this.#firstVisit(obj)) this.#visitArray(obj);
      return;
    }
    if (obj instanceof Map && Object.getPrototypeOf(obj) === Map.prototype) {
      if (hasObjectEntry(obj) && this.#firstVisit(obj)) this.#visitMap(obj);
      return;
    }
    if (!this.#firstVisit(obj)) return;
    if (proto === null) {
      this.fixups.push({ p: [...this.#path], n: true });
      return this.#visitProperties(obj);
    }
    if (ArrayBuffer.isView(obj)) return this.#noteView(obj);
    if (obj instanceof Map) return this.#visitMap(obj);
    if (obj instanceof Set) return this.#visitSet(obj);
    if (obj instanceof Error) return this.#visitError(obj, proto);
    const registered = registeredNameOf(proto);
    if (registered !== undefined) {
      this.fixups.push({ p: [...this.#path], c: registered });
      return this.#visitProperties(obj);
    }
    this.#fail(describeUnsupported(obj, proto));
  }

  // Objects with nothing to look into need no cycle bookkeeping: only those holding objects
  // (or functions, symbols) go into the seen set, which is most of the walk's cost.
  #firstVisit(obj: object): boolean {
    const size = this.#seen.size;
    return this.#seen.add(obj).size !== size;
  }

  #hasObjectProperty(obj: object): boolean {
    const record = obj as Record<string, unknown>;
    if (this.#forIn) {
      for (const key in record) if (needsVisit(record[key])) return true;
      return false;
    }
    return Object.keys(record).some((key) => needsVisit(record[key]));
  }

  #checkSymbols(obj: object): void {
    for (const symbol of Object.getOwnPropertySymbols(obj)) {
      if (Object.prototype.propertyIsEnumerable.call(obj, symbol)) {
        this.#fail(`an object with a symbol key (${String(symbol)}), which cannot be stored`);
      }
    }
  }

  #visitProperties(obj: object): void {
    this.#checkSymbols(obj);
    const record = obj as Record<string, unknown>;
    if (this.#forIn && Object.getPrototypeOf(obj) !== null) {
      for (const key in record) {
        const child = record[key];
        if (needsVisit(child)) this.#visitChild(key, child);
      }
    } else {
      for (const key of Object.keys(record)) {
        const child = record[key];
        if (needsVisit(child)) this.#visitChild(key, child);
      }
    }
  }

  // for...of, not arr[i]: an optimized indexed load seen with several array kinds makes V8
  // generalize the user's arrays (small integers to doubles, packed to holey), which slows
  // their code and bloats later saves.
  #visitArray(arr: unknown[]): void {
    let i = 0;
    for (const child of arr) {
      if (needsVisit(child)) this.#visitChild(i, child);
      i++;
    }
  }

  #visitMap(map: Map<unknown, unknown>): void {
    if (Object.getPrototypeOf(map) !== Map.prototype) this.#failSubclass(map);
    let i = 0;
    map.forEach((v, k) => {
      if (needsVisit(k)) this.#visitChild({ m: i, k: true }, k);
      if (needsVisit(v)) this.#visitChild({ m: i, k: false }, v);
      i++;
    });
  }

  #visitSet(set: Set<unknown>): void {
    if (Object.getPrototypeOf(set) !== Set.prototype) this.#failSubclass(set);
    let i = 0;
    set.forEach((v) => {
      if (needsVisit(v)) this.#visitChild({ s: i }, v);
      i++;
    });
  }

  #visitError(err: Error, proto: object): void {
    const extras: Record<string, unknown> = {};
    let hasExtras = false;
    for (const key of Object.keys(err)) {
      if (ERROR_OWN_KEYS.has(key)) continue;
      extras[key] = (err as unknown as Record<string, unknown>)[key];
      hasExtras = true;
    }
    // v8 keeps the class only for the standard error types; keep any other name as data.
    const name = err.name;
    const keepName = !STANDARD_ERROR_NAMES.has(name) && typeof name === 'string';
    if (hasExtras || keepName) {
      const fixup: Fixup = { p: [...this.#path], e: extras };
      if (keepName) fixup.name = name;
      this.fixups.push(fixup);
    }
    const registered = registeredNameOf(proto);
    if (registered !== undefined) this.fixups.push({ p: [...this.#path], c: registered });
    this.#visitProperties(err);
  }

  #noteView(view: ArrayBufferView): void {
    let use = this.buffers.get(view.buffer);
    const end = view.byteOffset + view.byteLength;
    if (use === undefined) {
      use = { min: view.byteOffset, max: end, views: 1 };
      this.buffers.set(view.buffer, use);
    } else {
      use.min = Math.min(use.min, view.byteOffset);
      use.max = Math.max(use.max, end);
      use.views++;
    }
    // One buffer is one segment, which a byte view must cover (#11.9).
    if (use.max - (use.min - (use.min % 8)) > MAX_SEGMENT_BYTES) {
      this.#fail(
        `an array over ${use.max - use.min} bytes of one buffer, more than the ${MAX_SEGMENT_BYTES} a checkpoint stores per buffer here; split it into several arrays`,
      );
    }
  }

  #failSubclass(obj: object): never {
    const registered = registeredNameOf(Object.getPrototypeOf(obj) as object);
    const what = registered ?? (obj.constructor as { name?: string } | undefined)?.name ?? '?';
    return this.#fail(
      `an instance of \`${what}\`, a subclass of Map or Set, which cannot keep its class`,
    );
  }

  #fail(what: string): never {
    const path = formatPath(this.#path);
    throw new SerializationError(`Cannot store \`${path}\`: it is ${what}`, path);
  }
}

function hasObjectEntry(map: Map<unknown, unknown>): boolean {
  for (const [k, v] of map) if (needsVisit(k) || needsVisit(v)) return true;
  return false;
}

function hasObjectItem(arr: unknown[]): boolean {
  for (const item of arr) if (needsVisit(item)) return true;
  return false;
}

function hasEnumerableKeys(obj: object): boolean {
  for (const _ in obj) return true;
  return false;
}

const stateSerializer = () =>
  class StateSerializer extends v8.Serializer {
    readonly segments: Uint8Array[] = [];
    readonly #plan = new Map<ArrayBufferLike, Segment>();

    constructor(buffers: Map<ArrayBufferLike, BufferUse>) {
      super();
      for (const [buffer, use] of buffers) {
        if (use.max - use.min < SEGMENT_MIN_BYTES && use.views === 1) continue;
        // Round the start down to 8 so every view stays aligned for its element size.
        const start = use.min - (use.min % 8);
        this.#plan.set(buffer, { index: this.segments.length, start });
        this.segments.push(new Uint8Array(buffer, start, use.max - start));
      }
      // Undocumented in @types/node but public in node:v8 (DefaultSerializer uses it).
      (
        this as unknown as { _setTreatArrayBufferViewsAsHostObjects(on: boolean): void }
      )._setTreatArrayBufferViewsAsHostObjects(true);
    }

    _writeHostObject(view: ArrayBufferView): void {
      const tag = TAG_BY_PROTOTYPE.get(Object.getPrototypeOf(view) as object);
      if (tag === undefined) {
        throw new TypeError(
          `Unsupported array buffer view ${Object.prototype.toString.call(view)}`,
        );
      }
      this.writeUint32(tag);
      const segment = this.#plan.get(view.buffer);
      if (segment === undefined) {
        this.writeUint32(0);
        this.writeUint32(view.byteLength);
        this.writeRawBytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      } else {
        this.writeUint32(1);
        this.writeUint32(segment.index);
        this.writeDouble(view.byteOffset - segment.start);
        this.writeDouble(view.byteLength);
      }
    }
  };

/**
 * Encodes `envelope`, an object whose keys name the roots in error paths (`state`,
 * `tracked`…). Throws SerializationError naming the path of the first value that cannot
 * be stored; nothing is written in that case.
 */
export function encodeV8State(envelope: Record<string, unknown>): EncodedState {
  const inspector = new StateInspector();
  try {
    inspector.visit(envelope);
  } catch (err) {
    if (isStackOverflow(err)) throw tooDeep(inspector.path, err);
    throw err;
  }
  const serializer = new (stateSerializer())(inspector.buffers);
  serializer.writeHeader();
  try {
    serializer.writeValue([envelope, inspector.fixups.length > 0 ? inspector.fixups : undefined]);
  } catch (err) {
    if (isStackOverflow(err)) throw tooDeep([], err);
    throw new SerializationError(`Cannot store the state: ${(err as Error).message}`, '', {
      cause: err,
    });
  }
  return { structure: serializer.releaseBuffer(), segments: serializer.segments };
}

const stateDeserializer = () =>
  class StateDeserializer extends v8.Deserializer {
    readonly #segments: readonly ArrayBuffer[];

    constructor(structure: Uint8Array, segments: readonly ArrayBuffer[]) {
      super(structure);
      this.#segments = segments;
    }

    _readHostObject(): ArrayBufferView {
      const tag = this.readUint32();
      const View = VIEW_TYPES[tag];
      if (View === undefined) throw new Error(`unknown array view tag ${tag}`);
      const mode = this.readUint32();
      let buffer: ArrayBuffer;
      let offset: number;
      let byteLength: number;
      if (mode === 0) {
        byteLength = this.readUint32();
        buffer = new Uint8Array(this.readRawBytes(byteLength)).buffer;
        offset = 0;
      } else {
        const segment = this.#segments[this.readUint32()];
        if (segment === undefined) throw new Error('array view refers to a missing segment');
        buffer = segment;
        offset = this.readDouble();
        byteLength = this.readDouble();
      }
      if (View === DataView) return new DataView(buffer, offset, byteLength);
      if (View === Buffer) return Buffer.from(buffer, offset, byteLength);
      const Typed = View as typeof Float64Array;
      return new Typed(buffer, offset, byteLength / Typed.BYTES_PER_ELEMENT);
    }
  };

/** Decodes what encodeState produced; `segments` are fresh buffers owned by the result. */
export function decodeV8State(
  structure: Uint8Array,
  segments: readonly ArrayBuffer[],
): Record<string, unknown> {
  const deserializer = new (stateDeserializer())(structure, segments);
  deserializer.readHeader();
  const [value, fixups] = deserializer.readValue() as [Record<string, unknown>, Fixup[]?];
  if (fixups !== undefined) applyFixups(value, fixups);
  return value;
}

function applyFixups(root: unknown, fixups: readonly Fixup[]): void {
  // Entries of each Map/Set on a path, listed once: fixups through a big Map stay linear.
  const entries = new Map<object, [unknown, unknown][]>();
  for (const fixup of fixups) {
    const target = resolvePath(root, fixup.p, entries);
    if ('c' in fixup) {
      const proto = registeredPrototype(fixup.c);
      if (proto === undefined) {
        throw new Error(
          `class \`${fixup.c}\` is not registered in this process; call registerClass() before restore()`,
        );
      }
      Object.setPrototypeOf(target, proto);
    } else if ('n' in fixup) {
      Object.setPrototypeOf(target, null);
    } else {
      if (!(target instanceof Error))
        throw new Error('error fixup on a value that is not an error');
      // defineProperty, not assignment: a key named `__proto__` stays data.
      for (const [key, value] of Object.entries(fixup.e ?? {})) {
        Object.defineProperty(target, key, {
          value,
          writable: true,
          configurable: true,
          enumerable: true,
        });
      }
      if (typeof fixup.name === 'string') {
        Object.defineProperty(target, 'name', {
          value: fixup.name,
          writable: true,
          configurable: true,
          enumerable: false,
        });
      }
    }
  }
}

function resolvePath(
  root: unknown,
  steps: readonly Step[],
  cache: Map<object, [unknown, unknown][]>,
): object {
  let node = root;
  for (const step of steps) {
    if (typeof step === 'object') {
      if (!(node instanceof Map || node instanceof Set))
        throw new Error('fixup path does not resolve');
      let list = cache.get(node);
      if (list === undefined) cache.set(node, (list = [...node.entries()]));
      const entry = list['m' in step ? step.m : step.s];
      node = 'm' in step ? entry?.[step.k ? 0 : 1] : entry?.[0];
    } else {
      // Own data only: a key named `__proto__` is data, never the prototype.
      node = Object.getOwnPropertyDescriptor(node, step)?.value;
    }
  }
  if (typeof node !== 'object' || node === null) throw new Error('fixup path does not resolve');
  return node;
}
