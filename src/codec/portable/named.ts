/**
 * Whether an array has own enumerable properties besides its items (#13.1): `index`,
 * `input` and `groups` on a regex match, a label put on a list. Asked of every array stored,
 * so it must cost little next to writing the items; it may answer yes wrongly (the caller
 * then lists the keys, exactly), never no wrongly.
 *
 * Plain JS lists an array's keys only with its indices, as strings: `Object.keys` of 1M
 * numbers takes 150-250 ms, where packing them takes a few. `util.inspect` of Node, Deno and
 * Bun lists the other keys alone (the engine's key walk that skips indices): with no items
 * shown it costs 2-12 µs whatever the length (measured on Node 20, Deno 2.9, Bun 1.4).
 * Short arrays take `Object.keys`, cheaper there.
 */
import { inspect, types } from 'node:util';

/** From this length on, util.inspect is cheaper than Object.keys (~1 µs at 128 items). */
const INSPECT_FROM = 128;

/**
 * Every option that changes the text given: no items, little user code (no custom inspect
 * function, no accessor, a proxy's target, not its traps; but the Symbol.toStringTag of the
 * values shown, and an error value's name, message and stack, are read), one line.
 */
const BARE: Parameters<typeof inspect>[1] = {
  maxArrayLength: 0,
  depth: 0,
  maxStringLength: 0,
  breakLength: Number.POSITIVE_INFINITY,
  compact: 3,
  colors: false,
  customInspect: false,
  getters: false,
  showHidden: false,
  showProxy: false,
  sorted: false,
  numericSeparator: false,
};

/** The text util.inspect gives an array of `length` with no other own enumerable key. */
const bare = (length: number) =>
  length === 0 ? '[]' : `[ ... ${length} more item${length === 1 ? '' : 's'} ]`;

let inspectWorks: boolean | undefined;

/** Whether util.inspect here shows arrays as `bare` says and lists their other keys. */
function checkInspect(): boolean {
  const labelled = Object.assign([1, 2], { label: 1 });
  const tagged = Object.assign([1, 2], { [Symbol('tag')]: 1 });
  try {
    return (
      inspect([7], BARE) === bare(1) &&
      inspect(Array.from({ length: INSPECT_FROM }), BARE) === bare(INSPECT_FROM) &&
      inspect(labelled, BARE) !== bare(2) &&
      inspect(tagged, BARE) !== bare(2)
    );
  } catch {
    // A getter it reads threw (see BARE), on Array.prototype itself: Object.keys then.
    return false;
  }
}

/** An array index: the canonical string of an integer in [0, 2^32 − 2]. */
export function isArrayIndex(key: string): boolean {
  const n = Number(key);
  return Number.isInteger(n) && n >= 0 && n < 2 ** 32 - 1 && String(n) === key;
}

/**
 * False only if `arr` has no own enumerable property but its indices (string or symbol
 * keyed); true when it may have one.
 */
export function mayHaveNamedProperties(arr: readonly unknown[]): boolean {
  // A proxy's keys come from its traps, in any order: listed one by one.
  if (types.isProxy(arr)) return true;
  if (arr.length < INSPECT_FROM || !(inspectWorks ??= checkInspect())) {
    // Keys come indices first (ascending), then the others: the last one tells.
    const keys = Object.keys(arr);
    const last = keys[keys.length - 1];
    if (last !== undefined && !isArrayIndex(last)) return true;
    return Object.getOwnPropertySymbols(arr).length > 0;
  }
  try {
    return inspect(arr, BARE) !== bare(arr.length);
  } catch {
    // A getter it still reads threw (see BARE): then the keys are listed one by one, as for
    // any array that may have named properties.
    return true;
  }
}

/** The own enumerable named (non-index) string keys of `arr`, in `Object.keys` order. */
export function namedKeys(arr: readonly unknown[]): string[] {
  return Object.keys(arr).filter((key) => !isArrayIndex(key));
}
