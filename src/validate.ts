/**
 * Checks of option values, in one message style (#16.4): ``Expected `option` to be <what>,
 * got <value> (<type>)``; a TypeError when the value has the wrong type, a RangeError when it
 * has the right type but is out of range. Every options module (checkpoint, S3, Redis) uses
 * these, so a value is checked one way wherever it is given.
 */

/** `` `0` (number) `` — the value and its type, for validation messages. */
export function describe(value: unknown): string {
  let shown: string;
  try {
    shown = typeof value === 'string' ? `'${value}'` : String(value);
  } catch {
    shown = Object.prototype.toString.call(value);
  }
  return `\`${shown}\` (${value === null ? 'null' : typeof value})`;
}

/** ``Expected `option` to be <expected>, got <value>``, as a TypeError. */
export function wrongType(option: string, expected: string, value: unknown): TypeError {
  return new TypeError(`Expected \`${option}\` to be ${expected}, got ${describe(value)}`);
}

/** ``Expected `option` to be <expected>, got <value>``, as a RangeError. */
function outOfRange(option: string, expected: string, value: unknown): RangeError {
  return new RangeError(`Expected \`${option}\` to be ${expected}, got ${describe(value)}`);
}

/** `value` if it is undefined or of JavaScript type `type`; else a TypeError. */
export function expectType<T>(
  option: string,
  value: unknown,
  type: 'string' | 'boolean' | 'function' | 'object',
): T | undefined {
  if (value !== undefined && typeof value !== type) {
    throw wrongType(option, type === 'object' ? 'an object' : `a ${type}`, value);
  }
  return value as T | undefined;
}

/** `value` if it is an integer from `min` to `max`: a TypeError if not a number, else a RangeError. */
export function expectInteger(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw wrongType(option, 'an integer', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw outOfRange(option, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/**
 * A seed: a non-negative safe integer (RangeError for any other number) or a string
 * (TypeError for any other type): the classes `new Random(seed)` throws, for the `seed` option.
 */
export function expectSeed(value: unknown): void {
  const expected = 'a non-negative safe integer or a string';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw outOfRange('seed', expected, value);
  } else if (typeof value !== 'string') {
    throw wrongType('seed', expected, value);
  }
}

/** `value` if it is one of `choices` (shown as `'a', 'b' or 'c'`); else a TypeError. */
export function expectOneOf<const C extends string>(
  option: string,
  value: unknown,
  choices: readonly C[],
): C {
  if (!choices.includes(value as C)) {
    const shown = choices.map((c) => `'${c}'`);
    const list = `${shown.slice(0, -1).join(', ')} or ${shown.at(-1)}`;
    throw wrongType(option, list, value);
  }
  return value as C;
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * `'30s'` → 30000. Accepts a number of milliseconds or `<number><ms|s|m|h|d|w>`; a string
 * without a unit is milliseconds, as a number would be (values from environment variables).
 */
export function parseDuration(value: unknown, option: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
  } else if (typeof value === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/.exec(value);
    if (match !== null) return Number(match[1]) * UNITS[match[2] ?? 'ms']!;
  }
  const expected = "milliseconds >= 0 or a duration like '30s', '5m', '2h'";
  throw typeof value === 'number'
    ? outOfRange(option, expected, value)
    : wrongType(option, expected, value);
}

/** Throws a TypeError naming the first key of `options` that is not in `known`. */
export function expectKnownKeys(options: object, known: object, where = ''): void {
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(known, key)) throw new TypeError(`Unknown option \`${where}${key}\``);
  }
}

/** `options` if it is an object; else a TypeError. */
export function expectObject(options: unknown): Record<string, unknown> {
  if (typeof options !== 'object' || options === null) {
    throw wrongType('options', 'an object', options);
  }
  return options as Record<string, unknown>;
}
