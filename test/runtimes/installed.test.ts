/**
 * The `resume` command of the package as a Bun or Deno user installs it (#13.3): the tarball
 * `npm pack` makes, installed in a scratch app (test/packed.ts), a checkpoint saved there by a
 * Bun or a Deno program, then read back with `bunx resume …` (on a machine with Node, where
 * Bun runs the bin's `#!/usr/bin/env node` with Node; with `--bun`; and on a machine with Bun
 * only) and with `deno run -A npm:resumable-state …` (the bin of the app's installed package).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { installPacked } from '../packed.js';
import { runtimes } from './runtimes.js';

const bun = runtimes().find((rt) => rt.kind === 'bun');
const deno = runtimes().find((rt) => rt.kind === 'deno');

// A program of the app, importing the package by its name: saves one state of every kind
// `export` tags, and prints which runtime saved it.
const SAVE = `import { Checkpoint } from 'resumable-state';
const chp = new Checkpoint({ name: 'job', dir: process.argv[2], log: false });
const state = chp.restore({ step: 0, seen: new Map(), at: new Date(0), xs: new Float64Array(2), big: 0n });
state.step = 7;
state.seen.set('a', 1);
state.at = new Date('2026-01-02T03:04:05.000Z');
state.xs.set([1.5, -2]);
state.big = 2n ** 70n;
chp.save();
chp.close();
console.log(typeof Bun === 'object' ? 'Bun' : typeof Deno === 'object' ? 'Deno' : 'Node');
`;

/** What `resume export job` prints for the state SAVE saved. */
const EXPORTED = `${JSON.stringify(
  {
    step: 7,
    seen: { $map: [['a', 1]] },
    at: { $date: '2026-01-02T03:04:05.000Z' },
    xs: { $typed: 'Float64Array', data: [1.5, -2] },
    big: { $bigint: '1180591620717411303424' },
  },
  null,
  2,
)}\n`;

/** `resume list <dir>`: the header and the one checkpoint of the app's save.mjs. */
const listed = (app: string) =>
  new RegExp(
    `^NAME +SAVED +AGE +SAVES +SIZE +GENS +STATUS +SOURCE\njob +\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z +\\d+s +1 +\\d+ B +1 +ok +\\(top level\\) ${escaped(app)}/save\\.mjs\n$`,
  );
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let app = '';
/** A folder holding only `bun` and `bunx`: a machine where Bun is the only JavaScript runtime. */
let bunOnly = '';

beforeAll(() => {
  if (bun === undefined && deno === undefined) return;
  app = mkdtempSync(join(tmpdir(), 'rs-installed-'));
  installPacked(app);
  writeFileSync(join(app, 'save.mjs'), SAVE);
  if (bun !== undefined) {
    bunOnly = join(app, 'bun-only');
    mkdirSync(bunOnly);
    symlinkSync(bun.bin, join(bunOnly, 'bun'));
    symlinkSync(bun.bin, join(bunOnly, 'bunx'));
  }
}, 300_000);
afterAll(() => {
  if (app !== '') rmSync(app, { recursive: true, force: true });
});

/** Runs `cmd args` in the app; its exit code, stdout and stderr. */
function inApp(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const { FORCE_COLOR: _, ...plain } = env;
  const result = spawnSync(cmd, args, {
    cwd: app,
    encoding: 'utf8',
    env: { ...plain, NO_COLOR: '1', RESUME_DIR: '' },
    timeout: 60_000,
  });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

describe.runIf(bun !== undefined)('bunx resume', () => {
  const ways = () =>
    [
      ['on a machine with Node (the shebang: Node runs it)', bun!.bin, ['x'], process.env],
      ['with --bun (Bun runs it)', bun!.bin, ['x', '--bun'], process.env],
      // Only PATH and HOME: Bun skips its `node` shim when NODE or npm_node_execpath (set by
      // `npm run`) names a Node, which a machine with Bun only would not have.
      ['on a machine with Bun only', 'bunx', [], { PATH: bunOnly, HOME: process.env.HOME }],
    ] as const;

  test('reads what a Bun program of the app saved: list, export, a missing name, a typo', () => {
    const dir = join(app, 'from-bun');
    expect(inApp(bun!.bin, ['save.mjs', dir])).toEqual({ code: 0, out: 'Bun\n', err: '' });
    for (const [way, cmd, pre, env] of ways()) {
      const resume = (...args: string[]) => inApp(cmd, [...pre, 'resume', ...args], env);
      const list = resume('list', dir);
      expect({ way, ...list, out: '' }).toEqual({ way, code: 0, out: '', err: '' });
      expect(list.out).toMatch(listed(app));
      expect({ way, ...resume('export', 'job', '--dir', dir) }).toEqual({
        way,
        code: 0,
        out: EXPORTED,
        err: '',
      });
    }
    // Failures exit with their codes (on Bun alone).
    const [, cmd, pre, env] = ways()[2];
    const resume = (...args: string[]) => inApp(cmd, [...pre, 'resume', ...args], env);
    expect(resume('show', 'nothere', '--dir', dir)).toEqual({
      code: 1,
      out: '',
      err: `resume: no checkpoint "nothere" in ${dir}\n`,
    });
    const typo = resume('lst');
    expect({ code: typo.code, first: typo.err.split('\n')[0] }).toEqual({
      code: 2,
      first: 'resume: Unknown command "lst". Did you mean "list"?',
    });
  });
});

describe.runIf(deno !== undefined)('deno run -A npm:resumable-state', () => {
  test('reads what a Deno program of the app saved: list, export, a missing name', () => {
    const dir = join(app, 'from-deno');
    expect(inApp(deno!.bin, ['run', '-A', 'save.mjs', dir])).toEqual({
      code: 0,
      out: 'Deno\n',
      err: '',
    });
    // The package's one bin, from the app's node_modules (nothing downloaded).
    const resume = (...args: string[]) =>
      inApp(deno!.bin, ['run', '-A', 'npm:resumable-state', ...args]);
    const list = resume('list', dir);
    expect({ ...list, out: '' }).toEqual({ code: 0, out: '', err: '' });
    expect(list.out).toMatch(listed(app));
    expect(resume('export', 'job', '--dir', dir)).toEqual({ code: 0, out: EXPORTED, err: '' });
    expect(resume('show', 'nothere', '--dir', dir)).toEqual({
      code: 1,
      out: '',
      err: `resume: no checkpoint "nothere" in ${dir}\n`,
    });
  });
});
