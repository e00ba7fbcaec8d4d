/**
 * Registry of user classes whose instances may be stored. v8's serializer turns every
 * class instance into a plain object; registered ones get their prototype back on restore.
 */

// biome-ignore lint/suspicious/noExplicitAny: any constructor may be registered.
type Constructor = abstract new (...args: any[]) => object;

const byName = new Map<string, Constructor>();
const byPrototype = new Map<object, string>();

/**
 * Lets instances of `Class` be saved and restored with their prototype. Their own
 * enumerable properties are stored; the constructor is not called on restore.
 * @param name Stable name stored in checkpoints; defaults to `Class.name`. Give one
 *   explicitly when code is minified or two classes share a name.
 */
export function registerClass(Class: Constructor, name: string = Class.name): void {
  if (typeof Class !== 'function' || typeof Class.prototype !== 'object') {
    throw new TypeError(`Expected \`Class\` to be a class, got \`${String(Class)}\``);
  }
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`Expected \`name\` to be a non-empty string, got \`${String(name)}\``);
  }
  const existing = byName.get(name);
  if (existing !== undefined && existing !== Class) {
    throw new TypeError(`Class name \`${name}\` is already registered to another class`);
  }
  byName.set(name, Class);
  byPrototype.set(Class.prototype, name);
}

/** Registered name of an object's prototype, if any. */
export function registeredNameOf(prototype: object): string | undefined {
  return byPrototype.get(prototype);
}

/** Prototype registered under `name`, if any. */
export function registeredPrototype(name: string): object | undefined {
  return byName.get(name)?.prototype;
}
