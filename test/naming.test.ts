import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CallerInfo,
  defaultDir,
  deriveName,
  findCaller,
  findProjectDir,
  legacySafeFileName,
  safeFileName,
} from '../src/naming.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = join(root, 'test', 'fixtures', 'naming');
const fixture = (name: string): string => join(fixtures, name);

/** Runs `node <args>` from the repository root and parses the JSON printed on the last line. */
function runNode(args: string[], env: Record<string, string> = {}): Record<string, unknown> {
  const output = execFileSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NAMING_LIB: undefined, NAMING_CHECKPOINT: undefined, ...env },
  });
  return JSON.parse(output.trim().split('\n').at(-1) ?? 'null') as Record<string, unknown>;
}

/** 1-based line of the `// @line <marker>` comment in a fixture. */
function lineOf(file: string, marker: string): number {
  const index = readFileSync(fixture(file), 'utf8')
    .split('\n')
    .findIndex((line) => line.endsWith(`// @line ${marker}`));
  if (index < 0) throw new Error(`no @line ${marker} in ${file}`);
  return index + 1;
}

/**
 * Compiles src/naming.ts the way a published build would be used, without tsx: as ESM and as
 * CommonJS in a temporary `dist/` folder, next to a stand-in Checkpoint module with a helper,
 * so that the library-frame skipping can be exercised.
 */
let work: string;
let compiledEsm: string;
let compiledCjs: string;
let compiledCheckpoint: string;
let compiledApp: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'naming-test-'));
  const dist = join(work, 'dist');
  mkdirSync(dist);
  const source = readFileSync(join(root, 'src', 'naming.ts'), 'utf8');
  const compile = (module: ts.ModuleKind): string =>
    ts.transpileModule(source, {
      fileName: 'naming.ts',
      compilerOptions: { module, target: ts.ScriptTarget.ES2022 },
    }).outputText;
  compiledEsm = join(dist, 'naming.mjs');
  compiledCjs = join(dist, 'naming.cjs');
  compiledCheckpoint = join(dist, 'checkpoint.mjs');
  compiledApp = join(dist, 'app.mjs');
  writeFileSync(compiledEsm, compile(ts.ModuleKind.ESNext));
  writeFileSync(compiledCjs, compile(ts.ModuleKind.CommonJS));
  writeFileSync(
    compiledCheckpoint,
    [
      "import { deriveName, findCaller } from './naming.mjs';",
      'export class Checkpoint {',
      '  constructor() { this.caller = findCaller(Checkpoint); this.name = deriveName(this.caller); }',
      '}',
      'export function createCheckpoint() { return new Checkpoint(); }',
      'export function withCheckpoint(fn) { return fn(createCheckpoint()); }',
      '',
    ].join('\n'),
  );
  // User code that ends up in the library's folder, as when an application is bundled.
  writeFileSync(
    compiledApp,
    [
      "import { deriveName, findCaller } from './naming.mjs';",
      'class Fake { constructor() { this.caller = findCaller(Fake); } }',
      'function userInBundle() { return deriveName(new Fake().caller); }',
      'console.log(JSON.stringify({ fn: userInBundle(), top: deriveName(new Fake().caller) }));',
      '',
    ].join('\n'),
  );
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('findCaller + deriveName: TypeScript ES module under tsx (file:// URLs, minified lines)', () => {
  let results: Record<string, unknown>;
  beforeAll(() => {
    results = runNode(['--import', 'tsx', fixture('primes.ts')]);
  });

  it.each([
    ['topLevel', 'primes'],
    ['functionDeclaration', 'primes.computePrimes'],
    ['arrowConst', 'primes.sieve'],
    ['asyncBeforeAwait', 'primes.fetchPrimes'],
    ['asyncAfterAwait', 'primes.fetchPrimes'],
    ['asyncArrowAfterAwait', 'primes.loadPrimes'],
    ['generator', 'primes.primeStream'],
    ['asyncGenerator', 'primes.primeFeed'],
    ['method', 'primes.Trainer.run'],
    ['asyncMethodAfterAwait', 'primes.Trainer.resume'],
    ['getter', 'primes.Trainer.progress'],
    ['staticMethod', 'primes.Trainer.create'],
    ['classConstructor', 'primes.Trainer'],
    ['inheritedMethod', 'primes.FastTrainer.run'],
    ['objectMethod', 'primes.prepare'],
    ['topLevelIife', 'primes'],
    ['evalCode', 'checkpoint'],
    ['boundaryNotOnStack', 'primes.boundaryNotOnStack'],
    ['subclassBoundaryClass', 'primes.Derived'],
    ['subclassBoundaryNewTarget', 'primes.makeDerived'],
  ])('%s → %s', (key, expected) => {
    expect(results[key]).toBe(expected);
  });

  it.each(['anonymousCallback', 'timeoutCallback', 'thenCallback'])(
    '%s → primes.anonymous-L<source line>, mapped through the tsx source map',
    (key) => {
      expect(results[key]).toBe(`primes.anonymous-L${lineOf('primes.ts', key)}`);
    },
  );

  it('reports the file as a path and the original line', () => {
    expect(results.topLevelInfo).toEqual({
      file: fixture('primes.ts'),
      line: lineOf('primes.ts', 'topLevelInfo'),
      topLevel: true,
    });
    expect(results.methodInfo).toEqual({
      file: fixture('primes.ts'),
      functionName: 'info',
      typeName: 'Trainer',
      line: lineOf('primes.ts', 'methodInfo'),
      topLevel: false,
    });
  });
});

describe('findCaller + deriveName: plain JavaScript', () => {
  const esmExpected = () => ({
    topLevel: 'esm-cases',
    topLevelInfo: {
      file: fixture('esm-cases.mjs'),
      line: lineOf('esm-cases.mjs', 'topLevelInfo'),
      topLevel: true,
    },
    functionDeclaration: 'esm-cases.computePrimes',
    arrowConst: 'esm-cases.sieve',
    asyncAfterAwait: 'esm-cases.fetchPrimes',
    generator: 'esm-cases.primeStream',
    method: 'esm-cases.Trainer.run',
    staticMethod: 'esm-cases.Trainer.create',
    anonymousCallback: `esm-cases.anonymous-L${lineOf('esm-cases.mjs', 'anonymousCallback')}`,
  });

  const cjsExpected = () => ({
    topLevel: 'cjs-cases',
    topLevelInfo: {
      file: fixture('cjs-cases.cjs'),
      line: lineOf('cjs-cases.cjs', 'topLevelInfo'),
      topLevel: true,
    },
    functionDeclaration: 'cjs-cases.computePrimes',
    arrowConst: 'cjs-cases.sieve',
    generator: 'cjs-cases.primeStream',
    method: 'cjs-cases.Trainer.run',
    staticMethod: 'cjs-cases.Trainer.create',
    anonymousCallback: `cjs-cases.anonymous-L${lineOf('cjs-cases.cjs', 'anonymousCallback')}`,
    topLevelIife: 'cjs-cases',
    asyncAfterAwait: 'cjs-cases.fetchPrimes',
  });

  it('.mjs under plain node (compiled library, file:// URL frames)', () => {
    const results = runNode([fixture('esm-cases.mjs')], {
      NAMING_LIB: pathToFileURL(compiledEsm).href,
    });
    expect(results).toEqual(esmExpected());
  });

  it('.mjs under tsx (library from source)', () => {
    expect(runNode(['--import', 'tsx', fixture('esm-cases.mjs')])).toEqual(esmExpected());
  });

  it('.cjs under plain node (compiled CommonJS library, Object.<anonymous> wrapper)', () => {
    expect(runNode([fixture('cjs-cases.cjs')], { NAMING_LIB: compiledCjs })).toEqual(cjsExpected());
  });

  it('.cjs under tsx (library from source)', () => {
    expect(runNode(['--import', 'tsx', fixture('cjs-cases.cjs')])).toEqual(cjsExpected());
  });
});

describe('findCaller + deriveName: code without a file', () => {
  const program = (load: string) =>
    `${load}.then(({ deriveName, findCaller }) => {
      class Fake { constructor() { this.caller = findCaller(Fake); } }
      function computePrimes() { return deriveName(new Fake().caller); }
      console.log(JSON.stringify({ top: deriveName(new Fake().caller), fn: computePrimes() }));
    })`;

  it('node -e (CommonJS) → checkpoint', () => {
    const code = program(`import(${JSON.stringify(pathToFileURL(compiledEsm).href)})`);
    expect(runNode(['-e', code])).toEqual({ top: 'checkpoint', fn: 'checkpoint' });
  });

  it('node --input-type=module -e (file://<cwd>/[eval1]) → checkpoint', () => {
    const code = program(`import(${JSON.stringify(pathToFileURL(compiledEsm).href)})`);
    expect(runNode(['--input-type=module', '-e', code])).toEqual({
      top: 'checkpoint',
      fn: 'checkpoint',
    });
  });
});

describe('findCaller + deriveName: TypeScript compiled to CommonJS by tsx', () => {
  it('.cts: the module body inside tsx’s (()=>{...})() wrapper still counts as top level', () => {
    // Required from -e: Node 20 cannot load a .cts entry point that requires ESM TypeScript.
    const code = `require(${JSON.stringify(fixture('cts-cases.cts'))})`;
    expect(runNode(['--import', 'tsx', '-e', code])).toEqual({
      topLevel: 'cts-cases',
      topLevelInfo: {
        file: fixture('cts-cases.cts'),
        line: lineOf('cts-cases.cts', 'topLevelInfo'),
        topLevel: true,
      },
      functionDeclaration: 'cts-cases.computePrimes',
      method: 'cts-cases.Trainer.run',
      staticMethod: 'cts-cases.Trainer.create',
      anonymousCallback: `cts-cases.anonymous-L${lineOf('cts-cases.cts', 'anonymousCallback')}`,
    });
  });
});

describe('findCaller: frames of the library itself are skipped', () => {
  it('attributes a checkpoint made by a library helper to the user code that called it', () => {
    const results = runNode([fixture('via-library.mjs')], {
      NAMING_CHECKPOINT: pathToFileURL(compiledCheckpoint).href,
    });
    expect(results).toEqual({
      topLevelDirect: 'via-library',
      topLevelViaHelper: 'via-library',
      direct: 'via-library.trainDirect',
      viaHelper: 'via-library.trainViaHelper',
      viaCallbackHelper: `via-library.anonymous-L${lineOf('via-library.mjs', 'viaCallbackHelper')}`,
    });
  });
});

describe('findCaller: code in the library folder itself (bundled application)', () => {
  it('uses the first library frame when no frame is outside the library', () => {
    expect(runNode([compiledApp])).toEqual({ fn: 'app.userInBundle', top: 'app' });
  });
});

describe('findCaller: user Error.stackTraceLimit / Error.prepareStackTrace', () => {
  let results: Record<string, Record<string, unknown>>;
  beforeAll(() => {
    results = runNode(['--import', 'tsx', fixture('overrides.ts')]) as typeof results;
  });

  const restored = (present: { limit: boolean; prepare: boolean }) => ({
    name: 'overrides.computePrimes',
    limitRestored: true,
    prepareRestored: true,
    limitPresent: present.limit,
    preparePresent: present.prepare,
  });

  it('Error.stackTraceLimit = 0 and a prepareStackTrace returning a string', () => {
    expect(results.limitZeroPrepareString).toEqual({
      ...restored({ limit: true, prepare: true }),
      stackAfter: { stack: 'custom stack', same: true },
    });
  });

  it('both properties absent stay absent', () => {
    expect(results.bothAbsent).toEqual(restored({ limit: false, prepare: false }));
  });

  it.each(['untouched', 'prepareUndefined', 'limitNotANumber', 'prepareThrows'])('%s', (key) => {
    expect(results[key]).toMatchObject({
      name: 'overrides.computePrimes',
      limitRestored: true,
      prepareRestored: true,
    });
  });

  it('an accessor prepareStackTrace is restored without calling its getter or setter', () => {
    expect(results.prepareAccessor).toEqual({
      ...restored({ limit: true, prepare: true }),
      setterCalls: 0,
    });
    expect(results.getterCalls).toBe(0);
  });

  it('a frozen stackTraceLimit is used as it is', () => {
    expect(results.frozenLimit).toMatchObject({ name: 'overrides.computePrimes' });
  });
});

describe('findCaller in this process (vitest)', () => {
  class Probe {
    readonly caller: CallerInfo;
    constructor() {
      this.caller = findCaller(Probe);
    }
  }
  function makeProbe(): CallerInfo {
    return new Probe().caller;
  }

  it('names the calling function and leaves Error untouched', () => {
    const limit = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit');
    const prepare = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace');
    const caller = makeProbe();
    expect(caller.file).toBe(fileURLToPath(import.meta.url));
    expect(deriveName(caller)).toBe('naming.test.makeProbe');
    expect(Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit')).toEqual(limit);
    expect(Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace')).toEqual(prepare);
  });
});

describe('deriveName', () => {
  const info = (overrides: Partial<CallerInfo>): CallerInfo => ({
    file: '/x/y/primes.ts',
    functionName: undefined,
    typeName: undefined,
    line: 12,
    ...overrides,
  });

  it('names functions, methods and top-level code', () => {
    expect(deriveName(info({ functionName: 'computePrimes' }))).toBe('primes.computePrimes');
    expect(
      deriveName(info({ file: '/x/trainer.ts', functionName: 'run', typeName: 'Trainer' })),
    ).toBe('trainer.Trainer.run');
    expect(deriveName(info({}))).toBe('primes');
    expect(deriveName(info({ topLevel: true }))).toBe('primes');
    expect(deriveName(info({ functionName: 'Object.<anonymous>', typeName: 'Object' }))).toBe(
      'primes',
    );
  });

  it('names unnamed non-top-level functions by line', () => {
    expect(deriveName(info({ topLevel: false }))).toBe('primes.anonymous-L12');
    expect(deriveName(info({ topLevel: false, line: undefined }))).toBe('primes.anonymous');
  });

  it('strips known extensions only', () => {
    for (const ext of ['.ts', '.mts', '.cts', '.tsx', '.js', '.mjs', '.cjs', '.jsx']) {
      expect(deriveName(info({ file: `/p/job${ext}`, functionName: 'f' }))).toBe('job.f');
    }
    expect(deriveName(info({ file: '/p/naming.test.ts' }))).toBe('naming.test');
    expect(deriveName(info({ file: '/p/script' }))).toBe('script');
    expect(deriveName(info({ file: '/p/x.coffee' }))).toBe('x.coffee');
  });

  it('uses checkpoint when there is no file', () => {
    expect(deriveName(info({ file: undefined, functionName: 'eval' }))).toBe('checkpoint');
  });

  it('cleans V8 decorations and ignores uninformative receiver types', () => {
    expect(deriveName(info({ functionName: 'async fetchPrimes' }))).toBe('primes.fetchPrimes');
    expect(deriveName(info({ functionName: 'bound computePrimes' }))).toBe('primes.computePrimes');
    expect(deriveName(info({ functionName: 'get size', typeName: 'Queue' }))).toBe(
      'primes.Queue.size',
    );
    for (const typeName of ['Object', 'global', 'process', 'Function', 'undefined']) {
      expect(deriveName(info({ functionName: 'step', typeName }))).toBe('primes.step');
    }
    expect(deriveName(info({ functionName: 'P.run', typeName: 'P' }))).toBe('primes.P.run');
    expect(deriveName(info({ functionName: 'Trainer', typeName: 'Trainer' }))).toBe(
      'primes.Trainer',
    );
  });
});

// 0.1's file names (32-bit hash): still read, so these stay frozen (#11.4).
describe('legacySafeFileName', () => {
  const hash8 = (name: string) =>
    createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 8);
  const cases: Array<[string, string]> = [
    ['../x', '_._x-d6b96a97'],
    ['/etc/passwd', '_etc_passwd-74acf318'],
    ['a\u0000b', 'a_b-59b271ae'],
    ['..', '_.-5ec1f7e7'],
    ['.', '_-cdb4ee2a'],
    ['', '_-e3b0c442'],
    ['CON', '_CON-a3dbc4b6'],
    ['nul', '_nul-99e62427'],
    ['con.ckpt', '_con.ckpt-1d5e2ca8'],
    ['COM1', '_COM1-6eac394b'],
    ['r\u00e9sum\u00e9', 'r_sum_-e9f7b5b6'],
    ['a b', 'a_b-c8687a08'],
    ['a\\b', 'a_b-c62016d0'],
    ['a/b', 'a_b-c14cddc0'],
    ['.hidden', '_hidden-16924190'],
    ['end.', 'end.-2e18562d'],
    ['name-0123abcd', 'name-0123abcd-608adc14'],
    ['x'.repeat(300), `${'x'.repeat(91)}-0d4e2ca9`],
    ['x'.repeat(101), `${'x'.repeat(91)}-c675a2e6`],
  ];

  it.each(cases)('%j → %s', (name, expected) => {
    expect(legacySafeFileName(name)).toBe(expected);
    expect(expected.endsWith(`-${hash8(name)}`)).toBe(true);
  });
});

describe('safeFileName', () => {
  const hash16 = (name: string) =>
    createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 16);
  const cases: Array<[string, string]> = [
    ['../x', '_._x-d6b96a97d147daaa'],
    ['', '_-e3b0c44298fc1c14'],
    ['CON', `_CON-${hash16('CON')}`],
    ['a/b', `a_b-${hash16('a/b')}`],
    ['name-0123abcd', `name-0123abcd-${hash16('name-0123abcd')}`],
    ['name-0123456789abcdef', `name-0123456789abcdef-${hash16('name-0123456789abcdef')}`],
    ['x'.repeat(300), `${'x'.repeat(83)}-${hash16('x'.repeat(300))}`],
  ];

  it.each(cases)('%j → %s', (name, expected) => {
    expect(safeFileName(name)).toBe(expected);
  });

  // #11.4: these two names shared one file in 0.1 (same first 91 characters, same 32-bit hash).
  it('gives names that collided under the 32-bit hash different files', () => {
    const prefix =
      'summarize.https://docs.example.com/reports/quarterly/2026/annual-financial-statements/summary?page=';
    const [a, b] = [`${prefix}11844`, `${prefix}21272`];
    expect(legacySafeFileName(a)).toBe(legacySafeFileName(b));
    expect(safeFileName(a)).toBe(`${safeFileName(a).slice(0, 83)}-01d9ea380adeb105`);
    expect(safeFileName(a)).not.toBe(safeFileName(b));
  });

  it('is the legacy name for every name that needs no hash', () => {
    for (const name of ['primes', 'primes.computePrimes', 'trainer.Trainer.run', 'x'.repeat(100)]) {
      expect(legacySafeFileName(name)).toBe(name);
    }
  });

  it('keeps safe names as they are', () => {
    for (const name of ['primes', 'primes.computePrimes', 'trainer.Trainer.run', 'a_b', 'x-1']) {
      expect(safeFileName(name)).toBe(name);
    }
    expect(safeFileName('x'.repeat(100))).toBe('x'.repeat(100));
  });

  it('always yields one safe, distinct path component', () => {
    const inputs = [
      ...cases.map(([name]) => name),
      'a_b',
      'a\tb',
      'a\nb',
      'a:b',
      'a*b',
      '\u{1F600}',
      'e\u0301',
      'C:\\Windows',
      'x'.repeat(100),
      `${'x'.repeat(300)}y`,
      'a_b-c8687a08',
      `a_b-${hash16('a b')}`,
    ];
    const outputs = inputs.map(safeFileName);
    expect(new Set(outputs).size).toBe(new Set(inputs).size);
    for (const out of outputs) {
      expect(out).toMatch(/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/);
      expect(out.length).toBeGreaterThan(0);
      expect(out.length).toBeLessThanOrEqual(100);
      expect(out).not.toMatch(/^(?:con|prn|aux|nul|com\d|lpt\d)(?:\.|$)/i);
    }
  });
});

describe('findProjectDir and defaultDir', () => {
  let project: string;
  let nested: string;
  beforeAll(() => {
    project = mkdtempSync(join(tmpdir(), 'naming-project-'));
    nested = join(project, 'a', 'b', 'c');
    mkdirSync(nested, { recursive: true });
    writeFileSync(join(project, 'package.json'), '{}');
  });
  afterAll(() => {
    rmSync(project, { recursive: true, force: true });
  });

  it('finds the nearest package.json at or above the file', () => {
    expect(findProjectDir(join(nested, 'train.ts'))).toBe(project);
    expect(findProjectDir(join(project, 'train.ts'))).toBe(project);
    expect(findProjectDir(pathToFileURL(join(nested, 'x.mjs')).href)).toBe(project);
    expect(findProjectDir(relative(nested, join(nested, 'y.ts')), nested)).toBe(project);
  });

  it('prefers an inner package.json and caches per folder', () => {
    const inner = join(project, 'inner', 'pkg');
    mkdirSync(join(inner, 'src'), { recursive: true });
    writeFileSync(join(inner, 'package.json'), '{}');
    expect(findProjectDir(join(inner, 'src', 'job.ts'))).toBe(inner);
    rmSync(join(inner, 'package.json'));
    expect(findProjectDir(join(inner, 'src', 'job.ts'))).toBe(inner);
  });

  it('falls back to cwd', () => {
    expect(findProjectDir(undefined, '/some/cwd')).toBe('/some/cwd');
    let dir = tmpdir();
    let ancestorHasPackage = false;
    for (;;) {
      ancestorHasPackage ||= existsSync(join(dir, 'package.json'));
      if (dirname(dir) === dir) break;
      dir = dirname(dir);
    }
    if (!ancestorHasPackage) {
      const bare = mkdtempSync(join(tmpdir(), 'naming-bare-'));
      try {
        expect(findProjectDir(join(bare, 'x.ts'), '/some/cwd')).toBe('/some/cwd');
      } finally {
        rmSync(bare, { recursive: true, force: true });
      }
    }
  });

  it('defaultDir uses RESUME_DIR when set, else <project>/.checkpoints', () => {
    const file = join(nested, 'train.ts');
    expect(defaultDir(file, {}, '/cwd')).toBe(join(project, '.checkpoints'));
    expect(defaultDir(file, { RESUME_DIR: '' }, '/cwd')).toBe(join(project, '.checkpoints'));
    expect(defaultDir(file, { RESUME_DIR: '/var/ckpt' }, '/cwd')).toBe('/var/ckpt');
    expect(defaultDir(file, { RESUME_DIR: 'ckpt' }, '/cwd')).toBe('/cwd/ckpt');
    expect(defaultDir(undefined, {}, '/cwd')).toBe('/cwd/.checkpoints');
  });
});
