/**
 * The `key` option: any serializable value that tells runs apart, reduced to a canonical
 * text (object keys sorted, so `{a, b}` and `{b, a}` are one key) and a short hash of it.
 */
import { createHash } from 'node:crypto';
import { describe } from './options.js';

/** Canonical text of `value`; throws TypeError for values a key cannot hold. */
export function canonicalKey(value: unknown, seen = new Set<object>()): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'undefined';
    case 'object': {
      if (value === null) return 'null';
      if (seen.has(value)) throw new TypeError('Expected `key` to have no cycles');
      seen.add(value);
      try {
        if (Array.isArray(value)) return `[${value.map((v) => canonicalKey(v, seen)).join(',')}]`;
        if (value instanceof Date) return `Date(${value.toISOString()})`;
        if (value instanceof Map) {
          const entries = [...value].map(
            ([k, v]) => `${canonicalKey(k, seen)}=>${canonicalKey(v, seen)}`,
          );
          return `Map{${entries.sort().join(',')}}`;
        }
        if (value instanceof Set) {
          return `Set{${[...value]
            .map((v) => canonicalKey(v, seen))
            .sort()
            .join(',')}}`;
        }
        const proto = Object.getPrototypeOf(value) as object | null;
        if (proto === Object.prototype || proto === null) {
          const record = value as Record<string, unknown>;
          const fields = Object.keys(record)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${canonicalKey(record[k], seen)}`);
          return `{${fields.join(',')}}`;
        }
      } finally {
        seen.delete(value);
      }
    }
  }
  throw new TypeError(
    `Expected \`key\` to hold only primitives, arrays, plain objects, Dates, Maps and Sets, got ${describe(value)}`,
  );
}

/** 12 hex characters identifying `key`, appended to the checkpoint name. */
export function hashKey(canonical: string): string {
  return createHash('sha256').update(canonical).digest('hex').slice(0, 12);
}
