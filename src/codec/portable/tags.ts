/**
 * Tags of the portable state encoding (format v2, #13.1). docs/format.md is the spec; the
 * numbers are stored in files: never renumber, only add.
 */

/** First bytes of a v2 state chunk: "RS", encoding version 2, flags 0. */
export const STATE_MAGIC = [0x52, 0x53, 0x02, 0x00] as const;

export const Tag = {
  undefined: 0x00,
  null: 0x01,
  false: 0x02,
  true: 0x03,
  int: 0x04,
  float: 0x05,
  bigint: 0x06,
  latin1: 0x07,
  utf16: 0x08,
  keyRef: 0x09,
  ref: 0x0a,
  array: 0x0b,
  holes: 0x0c,
  object: 0x0d,
  nullObject: 0x0e,
  instance: 0x0f,
  map: 0x10,
  set: 0x11,
  date: 0x12,
  regexp: 0x13,
  boxedNumber: 0x14,
  boxedString: 0x15,
  boxedBoolean: 0x16,
  boxedBigint: 0x17,
  error: 0x18,
  arrayBuffer: 0x19,
  view: 0x1a,
  /** A dense array of integers in [-2^31, 2^31) (no -0): its items as zigzag varints (#13.2). */
  intArray: 0x1b,
  /** A dense array of numbers, one at least not such an integer: its items as float64s. */
  numberArray: 0x1c,
  /**
   * `array`, `intArray` and `numberArray` followed by the array's own enumerable named
   * (non-index) properties, ended by END (#13.1: a regex match's `index`, `input`, `groups`).
   */
  namedArray: 0x1d,
  namedIntArray: 0x1e,
  namedNumberArray: 0x1f,
} as const;

/** Dense arrays of numbers at least this long are stored packed (tag intArray/numberArray). */
export const PACKED_MIN_LENGTH = 4;

/** In a key position: the end of an object's, instance's or error's properties. */
export const END = 0x00;

/** Array buffer view kinds, by stable number. */
export const VIEW_KINDS = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'DataView',
  'Buffer',
] as const;

/** Error constructors, by stable number. */
export const ERROR_KINDS = [
  'Error',
  'EvalError',
  'RangeError',
  'ReferenceError',
  'SyntaxError',
  'TypeError',
  'URIError',
] as const;

/** Buffers whose stored range covers at least this many bytes go out of band (a segment). */
export const SEGMENT_MIN_BYTES = 64 * 1024;
