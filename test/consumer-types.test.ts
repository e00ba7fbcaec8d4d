// The shipped declarations in the projects TypeScript users have (#12.2): the packed package
// installed in an ESM and a CommonJS app, compiled with `strict`, `skipLibCheck: false`,
// @types/node, and `moduleResolution` NodeNext or Bundler. Each compiles the type tests of
// test/types/ (imports renamed to the package's) and the ESM ones every ```ts block of the
// README too.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { installPacked, root } from './packed.js';

// npm, and a type check of @types/node and the AWS SDK's declarations, on a busy machine.
const slow = 300_000;
const tsc = join(root, 'node_modules/typescript/bin/tsc');
// What the type tests and README blocks import besides the package: the types a consumer
// has installed, and the optional peer dependencies whose types /s3 and /redis use.
const links = ['@types/node', 'expect-type', '@aws-sdk/client-s3', 'ioredis'];

/** The type tests, importing the package by name as a consumer does. */
function typeTests(): { name: string; code: string }[] {
  const dir = join(root, 'test/types');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.test-d.ts'))
    .map((name) => {
      const code = readFileSync(join(dir, name), 'utf8')
        .replaceAll("'../../src/index.js'", "'resumable-state'")
        .replaceAll(/'\.\.\/\.\.\/src\/(s3|redis)\.js'/g, "'resumable-state/$1'");
      if (/from '\.\.?\//.test(code)) throw new Error(`${name} imports a source file`);
      return { name: name.replace(/\.test-d\.ts$/, '.ts'), code };
    });
}

/**
 * Every ```ts block of the README, as a module. Blocks that are fragments get the imports
 * the README's first lines show, and the names they leave to the reader (`chp`, `work`,
 * `docs`…) come from readme-globals.d.ts, typed as the text around them says.
 */
function readmeBlocks(): { name: string; code: string }[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const blocks: { name: string; code: string }[] = [];
  for (const match of readme.matchAll(/^```ts\n([\s\S]*?)^```/gm)) {
    const line = readme.slice(0, match.index).split('\n').length;
    const body = match[1]!;
    const imports = /^import /m.test(body)
      ? ''
      : "import { Checkpoint } from 'resumable-state';\nimport { s3Store } from 'resumable-state/s3';\n";
    blocks.push({ name: `readme-line-${line}.ts`, code: `${imports}${body}export {};\n` });
  }
  return blocks;
}

const readmeGlobals = `import type { Checkpoint } from 'resumable-state';
declare global {
  const chp: Checkpoint;
  const s: { sum: number };
  function work(state: { sum: number }, i: number): void;
  const files: string[];
  function convert(file: string): void;
  function fetchPages(): AsyncIterable<string[]>;
  function store(page: string[]): void;
  const docs: { id: string; text: string }[];
  const llm: { summarize(text: string): Promise<string> };
  const n: number;
  function trainOneEpoch(state: { epoch: number; weights: Float32Array }): void;
}
`;

const apps = new Map<'module' | 'commonjs', string>();

// Made once for the file, for all its tests.
beforeAll(() => {
  for (const type of ['module', 'commonjs'] as const) {
    const app = mkdtempSync(join(tmpdir(), 'rs-types-'));
    apps.set(type, app);
    installPacked(app, { type, links });
    mkdirSync(join(app, 'src'));
    for (const { name, code } of typeTests()) writeFileSync(join(app, 'src', name), code);
    if (type === 'module') {
      // Top-level await in the README's blocks: ES modules only.
      mkdirSync(join(app, 'readme'));
      writeFileSync(join(app, 'readme', 'readme-globals.d.ts'), readmeGlobals);
      for (const { name, code } of readmeBlocks()) writeFileSync(join(app, 'readme', name), code);
    }
  }
}, slow);
afterAll(() => {
  for (const app of apps.values()) rmSync(app, { recursive: true, force: true });
});

function compile(type: 'module' | 'commonjs', resolution: 'NodeNext' | 'Bundler') {
  const app = apps.get(type)!;
  const config = `tsconfig.${resolution.toLowerCase()}.json`;
  const compilerOptions = {
    strict: true,
    skipLibCheck: false,
    noEmit: true,
    target: 'ES2022',
    module: resolution === 'NodeNext' ? 'NodeNext' : 'Preserve',
    moduleResolution: resolution,
  };
  const include = type === 'module' ? ['src', 'readme'] : ['src'];
  writeFileSync(join(app, config), JSON.stringify({ compilerOptions, include }, null, 2));
  const result = spawnSync(process.execPath, [tsc, '-p', config], { cwd: app, encoding: 'utf8' });
  return { code: result.status, errors: result.stdout + result.stderr };
}

describe('the packed declarations compile with strict and skipLibCheck: false', () => {
  test('the README has TypeScript blocks, and test/types has type tests', () => {
    expect(readmeBlocks().length).toBeGreaterThanOrEqual(5);
    expect(typeTests().length).toBeGreaterThanOrEqual(1);
  });

  test.each([
    ['module', 'NodeNext'],
    ['module', 'Bundler'],
    ['commonjs', 'NodeNext'],
    ['commonjs', 'Bundler'],
  ] as const)(
    'in a "type": "%s" project with moduleResolution %s',
    (type, resolution) => {
      expect(compile(type, resolution)).toEqual({ code: 0, errors: '' });
    },
    slow,
  );
});
