// The package as users install it (#12.1, #12.5): the tarball `npm pack` makes in a clean
// clone holds every entry point, installs without install scripts, runs, and passes publint
// and Are The Types Wrong. test/packed.ts packs it (once for all the test files using it).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';
import { cleanedAfterEach } from './helpers.js';
import { installPacked, packedTarball, root } from './packed.js';

const { tempDir } = cleanedAfterEach('rs-pack-');
// npm, tar and a TypeScript build on a busy 2-core machine.
const slow = 300_000;

// Tools print colour when the CI's terminal asks for it (FORCE_COLOR): outputs compared here are plain.
const { FORCE_COLOR: _, ...inherited } = process.env;
const plainEnv = { ...inherited, NO_COLOR: '1', RESUME_DIR: '' };

function run(cmd: string, args: string[], cwd: string) {
  const result = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    env: plainEnv,
  });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

/** Every path package.json names: `exports` (all conditions), `main`, `types`, `bin`. */
function entryPoints(pkg: Record<string, unknown>): string[] {
  const paths: string[] = [];
  const collect = (value: unknown): void => {
    if (typeof value === 'string') paths.push(value.replace(/^\.\//, ''));
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect([pkg.exports, pkg.main, pkg.types, pkg.bin]);
  return [...new Set(paths)].sort();
}

/** The README's first TypeScript block: the primes example. */
function readmePrimes(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (block === undefined) throw new Error('README.md has no ```ts block');
  return block;
}

/** Node 20.19+, 22.12+ and 23+ load ES modules with require() without a flag. */
function requiresEsm(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major >= 23 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19);
}

const first16 = '2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53';
const next15 = '59 61 67 71 73 79 83 89 97 101 103 107 109 113 127';

describe('npm pack', () => {
  test(
    'the tarball holds every path named by exports, main, types and bin, besides LICENSE and README',
    () => {
      const { files } = packedTarball();
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
      const named = entryPoints(pkg);
      expect(named).toEqual([
        'dist/cli/main.js',
        'dist/index.d.ts',
        'dist/index.js',
        'dist/redis.d.ts',
        'dist/redis.js',
        'dist/register.d.ts',
        'dist/register.js',
        'dist/s3.d.ts',
        'dist/s3.js',
        'package.json',
      ]);
      expect(named.filter((path) => !files.includes(path))).toEqual([]);
      expect(files.filter((path) => !path.startsWith('dist/'))).toEqual([
        'LICENSE',
        'README.md',
        'package.json',
      ]);
      // The worker thread's own file, started by path rather than imported.
      expect(files).toContain('dist/writer/worker.js');
      expect(files.filter((path) => path.endsWith('.map'))).toEqual([]);
    },
    slow,
  );

  test(
    'a scratch app installs it without install scripts, runs the README example and `npx resume list`',
    () => {
      const app = tempDir();
      // npm 11 lists the `prepare` of a package installed from a file among the install
      // scripts to review, though it runs it only for git and folder installs (that is what
      // builds a git install): from a tarball nothing runs; from the registry nothing is listed.
      const notices = installPacked(app)
        .split('\n')
        .filter((line) => /^npm warn install-scripts +\S+@/.test(line));
      expect(notices).toEqual([
        'npm warn install-scripts   resumable-state@0.1.0 (prepare: node scripts/build.mjs --if-stale)',
      ]);
      // Nothing the user installs has an install script (#12.5).
      const withScripts = readdirSync(join(app, 'node_modules'), { recursive: true })
        .map(String)
        .filter((path) => path.endsWith('package.json'))
        .filter((path) => {
          const { scripts = {} } = JSON.parse(
            readFileSync(join(app, 'node_modules', path), 'utf8'),
          );
          return ['preinstall', 'install', 'postinstall'].some((hook) => hook in scripts);
        });
      expect(withScripts).toEqual([]);

      // The README example as written, compiled to JavaScript (it prints its results), then
      // the saved state printed on the last line.
      const { outputText } = ts.transpileModule(readmePrimes(), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      writeFileSync(
        join(app, 'primes.mjs'),
        `${outputText}\nconsole.log(computePrimes(0).join(' '));\n`,
      );
      const lastLine = (out: string) => out.trimEnd().split('\n').at(-1);
      const firstRun = run(process.execPath, ['primes.mjs'], app);
      expect([firstRun.code, lastLine(firstRun.out)]).toEqual([0, first16]);
      const secondRun = run(process.execPath, ['primes.mjs'], app);
      expect([secondRun.code, lastLine(secondRun.out)]).toEqual([0, `${first16} ${next15}`]);
      expect(secondRun.err).toContain('resumed "primes.computePrimes" from save #3');

      const list = run('npx', ['resume', 'list'], app);
      expect(list.code).toBe(0);
      expect(list.out).toMatch(/^primes\.computePrimes\s/m);
    },
    slow,
  );

  test.runIf(requiresEsm())(
    'a CommonJS app require()s it (Node >= 20.19 and >= 22.12 load ES modules with require)',
    () => {
      const app = tempDir();
      installPacked(app, { type: 'commonjs' });
      writeFileSync(
        join(app, 'count.js'),
        [
          "const { Checkpoint } = require('resumable-state');",
          'const chp = new Checkpoint({ log: false });',
          'const s = chp.restore({ runs: 0 });',
          's.runs += 1;',
          'chp.save();',
          'console.log(chp.name, s.runs);',
        ].join('\n'),
      );
      expect(run(process.execPath, ['count.js'], app).out).toBe('count 1\n');
      expect(run(process.execPath, ['count.js'], app).out).toBe('count 2\n');
    },
    slow,
  );

  test(
    'publint finds nothing to report',
    () => {
      const { tarball } = packedTarball();
      const lint = run(join(root, 'node_modules/.bin/publint'), ['run', tarball], root);
      expect([lint.code, lint.out.trim().split('\n').at(-1)]).toEqual([0, 'All good!']);
    },
    slow,
  );

  test(
    'Are The Types Wrong finds no problem for Node 16+ and bundler resolution',
    () => {
      const { tarball } = packedTarball();
      // --profile node16: skips `moduleResolution: node10`, which ignores `exports` and so
      //   cannot see the subpaths /s3 and /redis; TypeScript deprecates it.
      // cjs-resolves-to-esm: attw (built on TypeScript 5.6) says a CommonJS consumer needs
      //   `import()`. No longer true: Node >= 20.19 and >= 22.12 require() ES modules (the
      //   test above runs it), and TypeScript >= 5.8 types it under `module: nodenext`
      //   (test/consumer-types.test.ts compiles a CommonJS consumer). Every other rule still
      //   applies to the CommonJS resolution.
      const attw = run(
        join(root, 'node_modules/.bin/attw'),
        [
          tarball,
          '--profile',
          'node16',
          '--ignore-rules',
          'cjs-resolves-to-esm',
          '--format',
          'json',
        ],
        root,
      );
      const { problems } = JSON.parse(attw.out).analysis as {
        problems: { kind: string; resolutionKind?: string }[];
      };
      const ignored = (p: (typeof problems)[number]) =>
        p.resolutionKind === 'node10' || p.kind === 'CJSResolvesToESM';
      expect(problems.filter((p) => !ignored(p))).toEqual([]);
      expect(attw.code).toBe(0);
    },
    slow,
  );
});
