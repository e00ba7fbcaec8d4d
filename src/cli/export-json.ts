/**
 * A state as JSON-compatible data for `resume export`: what JSON cannot hold gets a tagged
 * form, e.g. `{"$map": [[k, v], …]}`, `{"$date": "2026-…"}`, `{"$bigint": "123"}`,
 * `{"$typed": "Float64Array", "data": [1.5, …]}`, `{"$number": "NaN"}`, and a second
 * reference to an object already written is `{"$ref": "state.a.b"}`.
 */
export function toTaggedJson(
  value: unknown,
  path = 'state',
  seen = new Map<object, string>(),
): unknown {
  switch (typeof value) {
    case 'number':
      if (Number.isNaN(value) || !Number.isFinite(value)) return { $number: String(value) };
      return Object.is(value, -0) ? { $number: '-0' } : value;
    case 'bigint':
      return { $bigint: value.toString() };
    case 'undefined':
      return { $undefined: true };
    case 'string':
    case 'boolean':
      return value;
    case 'object':
      break;
    default:
      return { $unsupported: typeof value };
  }
  if (value === null) return null;
  const earlier = seen.get(value);
  if (earlier !== undefined) return { $ref: earlier };
  seen.set(value, path);
  const child = (v: unknown, step: string) => toTaggedJson(v, `${path}${step}`, seen);
  if (ArrayBuffer.isView(value)) {
    const typed = value as unknown as ArrayLike<number | bigint>;
    const data =
      value instanceof DataView || !('length' in value)
        ? [...new Uint8Array(value.buffer, value.byteOffset, value.byteLength)]
        : Array.from(typed, (x) => (typeof x === 'bigint' ? x.toString() : child(x, '')));
    return { $typed: value.constructor.name, data };
  }
  if (value instanceof ArrayBuffer)
    return { $typed: 'ArrayBuffer', data: [...new Uint8Array(value)] };
  if (Array.isArray(value)) return value.map((v, i) => child(v, `[${i}]`));
  if (value instanceof Map)
    return {
      $map: [...value].map(([k, v], i) => [child(k, `<key ${i}>`), child(v, `<value ${i}>`)]),
    };
  if (value instanceof Set) return { $set: [...value].map((v, i) => child(v, `<item ${i}>`)) };
  if (value instanceof Date)
    return { $date: Number.isNaN(value.getTime()) ? null : value.toISOString() };
  if (value instanceof RegExp) return { $regexp: value.source, flags: value.flags };
  if (value instanceof Error) {
    return {
      $error: { name: value.name, message: value.message, ...(child({ ...value }, '') as object) },
    };
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    // defineProperty: a key named `__proto__` stays data.
    Object.defineProperty(out, key, {
      value: child((value as Record<string, unknown>)[key], `.${key}`),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
