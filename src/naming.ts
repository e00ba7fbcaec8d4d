/**
 * Default checkpoint names and folders, derived from the code that creates the checkpoint.
 *
 * `new Checkpoint()` without a `name` is named after the function that called the
 * constructor (`primes.computePrimes`, `trainer.Trainer.run`) and stored in
 * `<project>/.checkpoints/`, where `<project>` is the nearest folder with a `package.json`
 * above that function's file. The caller is found with the V8 stack trace API.
 *
 * @module
 *
 * Over 400 lines: every runtime's stack format is parsed here, in one file
 * naming.test.ts compiles alone.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { findSourceMap } from 'node:module';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The code that created a checkpoint, as read from one V8 stack frame. */
export interface CallerInfo {
  /**
   * Absolute path of the caller's source file (a `file://` URL, as ESM frames report it, is
   * converted to a path). `undefined` when the code has no file: `eval`, `new Function`, the
   * REPL, `node -e`, `vm` scripts without a file name, `data:` URLs.
   */
  file: string | undefined;
  /**
   * Name of the calling function without V8's decorations (`async `, `bound `, `get `, `set `,
   * `Object.<anonymous>`); `undefined` for module top-level code and anonymous functions.
   */
  functionName: string | undefined;
  /**
   * Class of the receiver when the caller is a method called under its own name (`Trainer` for
   * `trainer.run()` and for the static `Trainer.create()`); `undefined` for plain functions and
   * for receivers that name no class (`Object`, `global`, `Function`, `process`, ...).
   */
  typeName: string | undefined;
  /**
   * 1-based line of the call in the original source. When Node knows a source map for the file
   * (under `tsx`, or `--enable-source-maps`) the line is mapped through it: tsx emits each
   * module on one or two minified lines, so unmapped lines would be meaningless there.
   */
  line: number | undefined;
  /**
   * `true` when the caller is module top-level code: an ES module body, the CommonJS module
   * wrapper (`Object.<anonymous>`), or an unnamed function invoked directly by that code (an
   * IIFE; tsx wraps every CommonJS module body in one). `false` for every other frame.
   * {@link findCaller} always sets it; when it is absent, {@link deriveName} treats a caller
   * without `functionName` as top level.
   */
  topLevel?: boolean;
}

/** A V8 CallSite. Declared here so that a runtime lacking one method degrades instead of failing. */
interface CallSite {
  getFileName(): string | null | undefined;
  getFunctionName(): string | null;
  getMethodName(): string | null;
  getTypeName(): string | null;
  getLineNumber(): number | null;
  getColumnNumber(): number | null;
  getEnclosingLineNumber?(): number | null;
  getEnclosingColumnNumber?(): number | null;
  isEval(): boolean;
  isAsync?(): boolean;
  toString(): string;
}

/** Frames kept after the boundary. The first non-internal, non-library frame is nearly always among the first few. */
const FRAME_LIMIT = 10;

/** Receiver types that say nothing about the caller: plain objects, the global, module wrappers. */
const ANONYMOUS_TYPES = new Set([
  'Object',
  'global',
  'globalThis',
  'Window',
  'process',
  'Module',
  'Function',
  'undefined',
  'null',
]);

const keepSites = (_error: Error, sites: unknown[]): unknown[] => sites;

type Key = 'stackTraceLimit' | 'prepareStackTrace';

/** True for a property that plain assignment sets and plain assignment (or delete) puts back. */
function plain(descriptor: PropertyDescriptor | undefined): boolean {
  return (
    descriptor === undefined || (descriptor.writable === true && descriptor.configurable === true)
  );
}

/**
 * Sets `Error[key]` for the duration of one capture; `false` when the property cannot be
 * changed (non-configurable and read-only). Non-configurable writable properties only get a
 * new value, so that their other attributes stay as they were.
 */
function install(key: Key, value: unknown, original: PropertyDescriptor | undefined): boolean {
  try {
    Object.defineProperty(
      Error,
      key,
      original?.configurable === false
        ? { value }
        : { value, writable: true, configurable: true, enumerable: original?.enumerable ?? false },
    );
    return true;
  } catch {
    return false;
  }
}

/** Puts back exactly what was there: the same descriptor (or value), or no property at all. */
function restore(key: Key, original: PropertyDescriptor | undefined, fast: boolean): void {
  try {
    if (original === undefined) Reflect.deleteProperty(Error, key);
    else if (fast) (Error as unknown as Record<string, unknown>)[key] = original.value;
    else Object.defineProperty(Error, key, original);
  } catch {
    // Unreachable in practice: whatever could be changed can be changed back.
  }
}

/**
 * Up to `frames` structured call sites (#16.7: the one capture, loops.ts uses it too) of the current stack, without the frames above and
 * including the topmost call of `boundary`. Empty when `boundary` is not on the stack or
 * capture is impossible. The user's `Error.stackTraceLimit` and `Error.prepareStackTrace`
 * (even absent or odd values, accessors included, whose getters and setters are not called)
 * are replaced only during the capture and restored exactly: by plain assignment when both
 * are plain writable properties (the usual case, and the fast one: loops capture on every
 * `range()`), else through their descriptors. A frozen `stackTraceLimit` is used as it is.
 */
export function captureSites<Site = CallSite>(boundary: Function, frames = FRAME_LIMIT): Site[] {
  const limit = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit');
  const prepare = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace');
  const fast = plain(limit) && plain(prepare);
  let limitSet = true;
  let sites: unknown;
  try {
    let prepared = true;
    if (fast) {
      Error.stackTraceLimit = frames;
      Error.prepareStackTrace = keepSites as typeof Error.prepareStackTrace;
    } else {
      limitSet = install('stackTraceLimit', frames, limit);
      prepared = install('prepareStackTrace', keepSites, prepare);
    }
    if (prepared) {
      const holder: { stack?: unknown } = {};
      Error.captureStackTrace(holder, boundary);
      // V8 formats lazily: `prepareStackTrace` runs on this first read, so it must happen here.
      sites = holder.stack;
    }
  } catch {
    sites = undefined;
  } finally {
    restore('prepareStackTrace', prepare, fast);
    if (limitSet) restore('stackTraceLimit', limit, fast);
  }
  return Array.isArray(sites) ? (sites as Site[]) : [];
}

/** `node --input-type=module -e` code: Node names it `file://<cwd>/[eval1]`. */
const EVAL_MODULE = /[\\/]\[eval\d*\]$/;

/** A frame's file as an absolute path; `undefined` for `REPL1`, `[eval]`, `data:` URLs and the like. */
function toPath(fileName: string): string | undefined {
  let path: string | undefined;
  if (fileName.startsWith('file:')) {
    try {
      path = fileURLToPath(fileName);
    } catch {
      return undefined;
    }
  } else if (isAbsolute(fileName)) {
    path = fileName;
  }
  return path === undefined || EVAL_MODULE.test(path) ? undefined : path;
}

/**
 * Folder of this module as V8 names it in stack frames (`dist/` when installed, `src/` under
 * tsx or vitest). Frames from files at or below it belong to the library and are skipped.
 * Read from the stack rather than `import.meta.url` so it also works when transpiled to CommonJS.
 */
const LIBRARY_DIR: string | undefined = (() => {
  const own = captureSites(captureSites)[0]?.getFileName();
  const path = own ? toPath(own) : undefined;
  return path === undefined ? undefined : dirname(path);
})();

function isLibraryFile(path: string): boolean {
  return LIBRARY_DIR !== undefined && (path === LIBRARY_DIR || path.startsWith(LIBRARY_DIR + sep));
}

/** `async run` → `run`, `bound f` → `f`, `get size` → `size`; anonymous markers → `undefined`. */
function cleanFunctionName(name: string | null | undefined): string | undefined {
  if (!name) return undefined;
  const clean = name.trim().replace(/^(?:(?:async|bound|get|set|new)\s+)+/, '');
  if (clean === '' || clean === '<anonymous>' || clean.endsWith('.<anonymous>')) return undefined;
  return clean;
}

function meaningfulType(typeName: string | null | undefined): string | undefined {
  return typeName && !ANONYMOUS_TYPES.has(typeName) ? typeName : undefined;
}

/** Calls a CallSite method, treating a throwing or missing one as "no information". */
function read<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

function isInternal(site: CallSite | undefined): boolean {
  return read(() => site?.getFileName())?.startsWith('node:') ?? false;
}

function enclosingIsScript(site: CallSite): boolean | undefined {
  const line = read(() => site.getEnclosingLineNumber?.());
  const column = read(() => site.getEnclosingColumnNumber?.());
  if (typeof line !== 'number' || typeof column !== 'number') return undefined;
  return line === 1 && column === 1;
}

/**
 * Whether an unnamed frame is module top-level code. The enclosing function of top-level code
 * is the whole script or module, which starts at 1:1; no function literal can start there.
 */
function isTopLevel(sites: CallSite[], index: number, file: string | undefined): boolean {
  const site = sites[index]!;
  const script = enclosingIsScript(site);
  if (script === undefined) {
    // Runtimes without enclosing positions: CJS wrapper, or nothing/Node itself below the frame.
    const next = sites[index + 1];
    return (
      read(() => site.toString())?.startsWith('Object.<anonymous>') ||
      next === undefined ||
      isInternal(next)
    );
  }
  if (script) return true;
  // An unnamed function called straight from top-level code of the same file: an IIFE, such as
  // the `(()=>{ ... })()` that tsx wraps around CommonJS module bodies.
  // Async frames are awaiting callers, not direct ones (`.then(() => ...)` after a top-level await).
  const next = sites[index + 1];
  if (next === undefined || read(() => next.isAsync?.()) === true) return false;
  if (cleanFunctionName(read(() => next.getFunctionName())) !== undefined) return false;
  const nextFile = read(() => next.getFileName());
  return nextFile != null && toPath(nextFile) === file && enclosingIsScript(next) === true;
}

/**
 * The class of a static method's receiver: V8 reports `Function` from `getTypeName()` but
 * prints the class in `toString()` (`Trainer.create (file:...)`).
 */
function staticClass(site: CallSite, method: string): string | undefined {
  const text = read(() => site.toString()) ?? '';
  const match = /^(?:async\s+)?([^\s.()[\]]+)\.([^\s()[\]]+)(?:\s|$)/.exec(text);
  return match?.[2] === method ? meaningfulType(match[1]) : undefined;
}

/** Line in the original source, through a source map when Node has one for the file. */
function originalLine(
  fileName: string,
  line: number | null,
  column: number | null,
): number | undefined {
  if (line === null) return undefined;
  if (column === null || process.sourceMapsEnabled === false) return line;
  const entry = read(() => findSourceMap(fileName)?.findEntry(line - 1, column - 1));
  return entry && 'originalLine' in entry && typeof entry.originalLine === 'number'
    ? entry.originalLine + 1
    : line;
}

/** The caller info of `sites[index]`, whose file name `fileName` maps to the path `file`. */
function callerInfoAt(
  sites: CallSite[],
  index: number,
  fileName: string | undefined,
  file: string | undefined,
): CallerInfo {
  const site = sites[index]!;
  const line = fileName
    ? originalLine(
        fileName,
        read(() => site.getLineNumber()) ?? null,
        read(() => site.getColumnNumber()) ?? null,
      )
    : (read(() => site.getLineNumber()) ?? undefined);
  const method = cleanFunctionName(read(() => site.getMethodName()));
  let functionName = cleanFunctionName(read(() => site.getFunctionName()));
  // The method name stands in for an unnamed function, unless Node itself made the call
  // through a property (`Timeout._onTimeout` for every `setTimeout` callback).
  if (functionName === undefined && method !== undefined && !isInternal(sites[index + 1])) {
    functionName = method;
  }
  let typeName: string | undefined;
  if (functionName !== undefined && method === functionName) {
    const type = read(() => site.getTypeName());
    typeName = type === 'Function' ? staticClass(site, method) : meaningfulType(type);
  }
  const topLevel = functionName === undefined && isTopLevel(sites, index, file);
  return { file, functionName, typeName, line, topLevel };
}

const UNKNOWN_CALLER: CallerInfo = {
  file: undefined,
  functionName: undefined,
  typeName: undefined,
  line: undefined,
  topLevel: true,
};

/**
 * Finds the code that called `boundary`, normally the `Checkpoint` constructor: pass the
 * constructor itself, or `new.target` to skip the constructors of subclasses too.
 *
 * Frames are skipped while they are Node internals (`node:` files), V8 builtins without a file
 * (`Array.map`, `Generator.next`), or files of this library (its `dist/` or `src/` folder), so
 * a checkpoint created through a library helper is attributed to the user's code. When every
 * frame belongs to the library (for example when it is bundled into the application's single
 * file), the first of them is used. `eval` code stops the search and yields an unknown file.
 *
 * Costs one stack capture of at most 10 frames: about 8 µs per call on Node 20 (x64).
 * `Error.stackTraceLimit` and `Error.prepareStackTrace` are overridden only during the capture
 * and restored exactly, so user values such as `stackTraceLimit = 0` neither break it nor change.
 */
export function findCaller(boundary: Function): CallerInfo {
  let sites = captureSites(boundary);
  // V8 captures nothing when the boundary is not on the stack; fall back to our own frame.
  if (sites.length === 0) sites = captureSites(findCaller);
  let firstLibraryFrame: [index: number, fileName: string, path: string] | undefined;
  for (let index = 0; index < sites.length; index++) {
    const site = sites[index]!;
    const fileName = read(() => site.getFileName());
    if (!fileName) {
      if (read(() => site.isEval())) return callerInfoAt(sites, index, undefined, undefined);
      continue; // a builtin such as Array.map
    }
    if (fileName.startsWith('node:')) continue;
    const path = toPath(fileName);
    if (path !== undefined && isLibraryFile(path)) {
      firstLibraryFrame ??= [index, fileName, path];
      continue;
    }
    return callerInfoAt(sites, index, fileName, path);
  }
  return firstLibraryFrame === undefined
    ? { ...UNKNOWN_CALLER }
    : callerInfoAt(sites, ...firstLibraryFrame);
}

const SOURCE_EXTENSION = /\.(?:[cm]?[jt]s|[jt]sx)$/;

/**
 * The default checkpoint name for a caller: `<fileBase>` or `<fileBase>.<function>`, where
 * `<fileBase>` is the file name without its `.ts`/`.mts`/`.cts`/`.tsx`/`.js`/`.mjs`/`.cjs`/`.jsx`
 * extension (`/x/y/primes.ts` → `primes`):
 *
 * | caller                                           | name                        |
 * | ------------------------------------------------ | --------------------------- |
 * | `function computePrimes()` (also async, generator, `const computePrimes = () =>`) | `primes.computePrimes` |
 * | method `run` of `class Trainer` (static too)     | `trainer.Trainer.run`       |
 * | constructor of `class Trainer`                   | `trainer.Trainer`           |
 * | object-literal method `run`                      | `trainer.run`               |
 * | module top level, ESM or CommonJS                | `primes`                    |
 * | unnamed callback, e.g. `items.map(() => ...)`    | `primes.anonymous-L12`      |
 * | no file (eval, REPL, `node -e`)                  | `checkpoint`                |
 *
 * Stability: names built from file and function names survive edits elsewhere in the file
 * and moving the project; renaming the file, function or class (or calling a method on a
 * subclass instance, which reports the subclass) changes them. `anonymous-L<line>` changes
 * whenever lines are added above the callback, and `checkpoint` is shared by all file-less
 * code: pass `name` explicitly in those cases. Names are not unique across folders: `a/index.ts`
 * and `b/index.ts` both give `index`. Pass the result through {@link safeFileName} before
 * using it as a file name.
 */
export function deriveName(caller: CallerInfo): string {
  if (!caller.file) return 'checkpoint';
  const file = basename(caller.file);
  const base = file.replace(SOURCE_EXTENSION, '') || file;
  const fn = cleanFunctionName(caller.functionName);
  if (fn === undefined) {
    if (caller.topLevel !== false) return base;
    return caller.line === undefined ? `${base}.anonymous` : `${base}.anonymous-L${caller.line}`;
  }
  const type = meaningfulType(caller.typeName);
  // `P.run` (inferred for `P.prototype.run = function () {}`) is already qualified.
  const qualified = type !== undefined && type !== fn && !fn.includes('.') ? `${type}.${fn}` : fn;
  return `${base}.${qualified}`;
}

/** Longest result of {@link safeFileName}, leaving room for suffixes within the usual 255-byte limit. */
const MAX_FILE_NAME = 100;
/** Hex digits of the hash suffix: 16 (64 bits) since #11.4; 0.1 used 8, which collided. */
const HASH_LENGTH = 16;
const LEGACY_HASH_LENGTH = 8;
const UNSAFE_CHAR = /[^A-Za-z0-9._-]/;
/** Windows device names, reserved with any extension (`nul.ckpt`). */
const WINDOWS_RESERVED = /^(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\.|$)/i;

/**
 * Maps any name to one safe path component, deterministically on every platform:
 *
 * - Characters in `[A-Za-z0-9._-]` are kept; every other code point (separators, NUL, control
 *   characters, spaces, non-ASCII) becomes one `_`, and a leading `.` becomes `_`.
 * - The result is returned unchanged when nothing was replaced, it has 1 to 100 characters, it
 *   does not end with `.`, it is no Windows device name (`CON`, `nul.x`, `COM1`, ...) and it
 *   does not end like a suffix (`-` + 16 hex digits, or the 8 of {@link legacySafeFileName}).
 * - Otherwise a Windows device name gets a `_` in front, the result is cut to 83 characters
 *   and `-` + the first 16 hex digits (64 bits) of the SHA-256 of the original name's UTF-8
 *   bytes is appended: `../x` → `_._x-d6b96a97d147daaa`, `''` → `_-e3b0c44298fc1c14`.
 *
 * So the result is never empty, `.` or `..`, never starts with `.`, has at most 100 characters,
 * and two different names give different results (short of a 64-bit hash collision between
 * names that also agree on their first 83 sanitised characters; the store also compares the
 * name saved in the file, #11.4). Caveats: lone surrogates hash like U+FFFD, and names
 * differing only in letter case stay distinct strings that case-insensitive file systems
 * (macOS, Windows defaults) treat as the same file.
 */
export function safeFileName(name: string): string {
  return fileNameWithHash(name, HASH_LENGTH);
}

/**
 * The file name 0.1 derived for `name` ({@link safeFileName} with a 32-bit hash, which
 * collided: #11.4). Still read, so checkpoints saved before the upgrade are found; equal to
 * `safeFileName(name)` for every name that needs no hash.
 */
export function legacySafeFileName(name: string): string {
  return fileNameWithHash(name, LEGACY_HASH_LENGTH);
}

/** Names ending like either suffix are suffixed too, keeping outputs distinct. */
const HASH_SUFFIX = /-(?:[0-9a-f]{8}|[0-9a-f]{16})$/;

function fileNameWithHash(name: string, hashLength: number): string {
  let safe = '';
  let changed = false;
  for (const char of name) {
    if (UNSAFE_CHAR.test(char)) {
      safe += '_';
      changed = true;
    } else {
      safe += char;
    }
  }
  if (safe.startsWith('.')) {
    safe = `_${safe.slice(1)}`;
    changed = true;
  }
  const reserved = WINDOWS_RESERVED.test(safe);
  // 0.1 kept names ending in 16 hex digits as they were: its file names stay as they were.
  const suffixed = hashLength === LEGACY_HASH_LENGTH ? /-[0-9a-f]{8}$/ : HASH_SUFFIX;
  if (
    !changed &&
    safe.length > 0 &&
    safe.length <= MAX_FILE_NAME &&
    !safe.endsWith('.') &&
    !reserved &&
    !suffixed.test(safe)
  ) {
    return safe;
  }
  // `CON-1234abcd` would do, but `con.x-1234abcd` is still `con` to Windows.
  if (reserved) safe = `_${safe}`;
  const hash = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, hashLength);
  return `${safe.slice(0, MAX_FILE_NAME - hashLength - 1) || '_'}-${hash}`;
}

/** Start folder → folder holding the nearest `package.json`, or `null` when there is none. */
const projectDirs = new Map<string, string | null>();

function hasPackageJson(dir: string): boolean {
  try {
    return statSync(join(dir, 'package.json'), { throwIfNoEntry: false })?.isFile() ?? false;
  } catch {
    return false; // EACCES, ENOTDIR, ...: not a project we can use
  }
}

/**
 * The nearest folder at or above `dirname(file)` that contains a `package.json`; `cwd` when
 * there is none or `file` is `undefined`. `file` may be a path (relative ones are resolved
 * against `cwd`) or a `file://` URL. Answers are cached per folder for the process lifetime,
 * so a `package.json` created later is not noticed.
 */
export function findProjectDir(file: string | undefined, cwd: string = process.cwd()): string {
  const path = file ? (file.startsWith('file:') ? toPath(file) : resolve(cwd, file)) : undefined;
  if (path === undefined) return resolve(cwd);
  const visited: string[] = [];
  let dir = dirname(path);
  let found: string | null;
  for (;;) {
    const cached = projectDirs.get(dir);
    if (cached !== undefined) {
      found = cached;
      break;
    }
    visited.push(dir);
    if (hasPackageJson(dir)) {
      found = dir;
      break;
    }
    const parent = dirname(dir);
    if (parent === dir) {
      found = null;
      break;
    }
    dir = parent;
  }
  for (const folder of visited) projectDirs.set(folder, found);
  return found ?? resolve(cwd);
}

/**
 * The default checkpoint folder: `RESUME_DIR` from `env` (resolved against `cwd`) when it is
 * set and non-empty, else `.checkpoints` in {@link findProjectDir}`(file, cwd)`.
 */
export function defaultDir(
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
  cwd: string = process.cwd(),
): string {
  const fromEnv = env.RESUME_DIR;
  if (fromEnv) return resolve(cwd, fromEnv);
  return join(findProjectDir(file, cwd), '.checkpoints');
}
