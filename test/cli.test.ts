import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { packCheckpoint } from '../dist/codec/container.js';
import { encodeState } from '../dist/codec/serializer.js';
import { Checkpoint, fileStore } from '../dist/index.js';

const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
const tempDir = () => mkdtempSync(join(tmpdir(), 'rs-cli-'));

function resume(args: string[], cwd = process.cwd()) {
  const run = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    cwd,
    env: { ...process.env, RESUME_DIR: '' },
  });
  return { code: run.status, out: run.stdout, err: run.stderr };
}

/** A checkpoint saved by the library and closed. */
function saved(dir: string, name: string, state: Record<string, unknown>, key?: unknown): void {
  const chp = new Checkpoint({
    name,
    dir,
    signals: false,
    log: false,
    ...(key === undefined ? {} : { key }),
  });
  chp.restore(state);
  chp.save();
  chp.close();
}

/** A checkpoint file saved long ago (its metadata says so). */
function savedLongAgo(dir: string, name: string): void {
  const meta = {
    name,
    source: { file: '/old/job.mjs', function: 'run' },
    createdAt: '2020-01-01T00:00:00.000Z',
    savedAt: '2020-01-02T00:00:00.000Z',
    saves: 7,
    library: 'resumable-state@0.1.0',
    node: 'v20.0.0',
    host: 'old-host',
    pid: 1,
  };
  const envelope = {
    state: { n: 1 },
    random: { algorithm: 'xoshiro128**', seed: 1, s: [1, 2, 3, 4], spare: null },
    tracked: {},
  };
  fileStore(dir).write(name, packCheckpoint(meta, encodeState(envelope), 'none'), 2);
}

describe('resume list', () => {
  test('a table of every checkpoint, newest first; a corrupt file is listed as corrupt', () => {
    const dir = tempDir();
    savedLongAgo(dir, 'old-job');
    saved(dir, 'train', { step: 3, weights: new Float64Array(1000) });
    writeFileSync(join(dir, 'broken.ckpt'), 'not a checkpoint');
    const { code, out, err } = resume(['list', dir]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME +SAVED +AGE +SAVES +SIZE +GENS +STATUS +SOURCE$/);
    expect(lines[1]).toMatch(/^train +\S+Z +\d+s +1 +[\d.]+ KB +1 +ok +saved \/.*cli\.test\.ts$/);
    expect(lines[2]).toMatch(
      /^old-job +2020-01-02T00:00:00\.000Z +\d+d \d+h +7 +\d+ B +1 +expired +run \/old\/job\.mjs$/,
    );
    expect(lines[3]).toMatch(
      /^broken +16 B +1 +corrupt +Checkpoint file .*broken\.ckpt is corrupt: not a checkpoint file \(bad magic\)$/,
    );
    expect(lines).toHaveLength(4);
  });

  test('--json gives one object per checkpoint for scripts', () => {
    const dir = tempDir();
    saved(dir, 'job', { a: 1 }, { file: 'a.csv' });
    const { code, out } = resume(['list', dir, '--json']);
    expect(code).toBe(0);
    const [entry] = JSON.parse(out) as Record<string, unknown>[];
    expect(Object.keys(entry!).sort()).toEqual([
      'bytes',
      'file',
      'generations',
      'info',
      'name',
      'status',
    ]);
    expect(entry!.name).toMatch(/^job\.[0-9a-f]{12}$/);
    expect(entry!.status).toBe('ok');
    expect((entry!.info as { key: string }).key).toBe('{"file":"a.csv"}');
  });

  test('the default folder is .checkpoints of the nearest package above the current directory', () => {
    const project = tempDir();
    writeFileSync(join(project, 'package.json'), '{}');
    saved(join(project, '.checkpoints'), 'found', { a: 1 });
    const nested = join(project, 'src', 'deep');
    spawnSync('mkdir', ['-p', nested]);
    const { code, out } = resume(['list'], nested);
    expect(code).toBe(0);
    expect(out).toMatch(/^NAME[^\n]*\nfound +/);
  });
});

describe('resume show and export', () => {
  test('show prints metadata and a summary of the state without dumping it', () => {
    const dir = tempDir();
    saved(
      dir,
      'sim',
      { step: 12, big: new Float64Array(1_000_000), names: ['a', 'b'], byId: new Map([[1, 'x']]) },
      'run-7',
    );
    const name = (JSON.parse(resume(['list', dir, '--json']).out) as { name: string }[])[0]!.name;
    const shown = resume(['show', name, '--dir', dir]);
    expect(shown.code).toBe(0);
    expect(shown.out).toContain(`name      ${name}\nkey       "run-7"\n`);
    expect(shown.out).toContain(
      'state\n  step: number 12\n  big: Float64Array(1000000), 7.6 MB\n  names: Array(2)\n  byId: Map(1)\n',
    );
    const json = JSON.parse(resume(['show', name, '--dir', dir, '--json']).out);
    expect(json.state).toEqual({
      step: 'number 12',
      big: 'Float64Array(1000000), 7.6 MB',
      names: 'Array(2)',
      byId: 'Map(1)',
    });
  });

  test('export writes the state as JSON, with what JSON cannot hold in a tagged form', () => {
    const dir = tempDir();
    const shared = { id: 1 };
    saved(dir, 'data', {
      when: new Date('2026-01-02T03:04:05.000Z'),
      count: 10n ** 20n,
      odd: [Number.NaN, -0, Number.POSITIVE_INFINITY, undefined],
      byName: new Map([['k', shared]]),
      tags: new Set(['a']),
      floats: Float32Array.of(1.5, 2),
      again: shared,
      re: /x+/g,
    });
    const { code, out } = resume(['export', 'data', '--dir', dir]);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({
      when: { $date: '2026-01-02T03:04:05.000Z' },
      count: { $bigint: '100000000000000000000' },
      odd: [{ $number: 'NaN' }, { $number: '-0' }, { $number: 'Infinity' }, { $undefined: true }],
      byName: { $map: [['k', { id: 1 }]] },
      tags: { $set: ['a'] },
      floats: { $typed: 'Float32Array', data: [1.5, 2] },
      again: { $ref: 'state.byName<value 0>' },
      re: { $regexp: 'x+', flags: 'g' },
    });
    const file = join(dir, 'out.json');
    expect(resume(['export', 'data', '--dir', dir, '--out', file])).toEqual({
      code: 0,
      out: `wrote ${file}\n`,
      err: '',
    });
  });
});

describe('resume rm and prune', () => {
  test('rm --yes deletes every file of that checkpoint and nothing else', () => {
    const dir = tempDir();
    saved(dir, 'gone', { a: 1 });
    saved(dir, 'gone', { a: 2 }); // a second generation
    saved(dir, 'gone.more', { b: 1 }); // a name that extends it
    const { code, out } = resume(['rm', 'gone', '--dir', dir, '--yes']);
    expect(code).toBe(0);
    expect(out).toBe(`removed ${join(dir, 'gone.ckpt')}\nremoved ${join(dir, 'gone.ckpt.1')}\n`);
    expect(readdirSync(dir)).toEqual(['gone.more.ckpt']);
  });

  test('rm refuses a checkpoint in use by a live process', () => {
    const dir = tempDir();
    const chp = new Checkpoint({ name: 'busy', dir, signals: false, log: false });
    chp.restore({ a: 1 });
    chp.save();
    const { code, err } = resume(['rm', 'busy', '--dir', dir, '--yes']);
    expect(code).toBe(1);
    expect(err).toBe(`resume: checkpoint "busy" is in use by process ${process.pid}\n`);
    expect(existsSync(join(dir, 'busy.ckpt'))).toBe(true);
    chp.close();
  });

  test('prune --older-than removes only checkpoints saved before that age', () => {
    const dir = tempDir();
    savedLongAgo(dir, 'ancient');
    saved(dir, 'recent', { a: 1 });
    const { code, out } = resume(['prune', '--older-than', '7d', '--dir', dir]);
    expect(code).toBe(0);
    expect(out).toBe(`removed ${join(dir, 'ancient.ckpt')}\n`);
    expect(readdirSync(dir)).toEqual(['recent.ckpt']);
  });

  test('prune --expired removes the files moved aside, and only those', () => {
    const dir = tempDir();
    saved(dir, 'live', { a: 1 });
    writeFileSync(join(dir, 'live.ckpt.expired-20260101T000000000Z'), 'x');
    writeFileSync(join(dir, 'live.ckpt.1.version-1-20260101T000000000Z'), 'x');
    const { code, out } = resume(['prune', '--expired', '--dir', dir]);
    expect(code).toBe(0);
    expect(out.trimEnd().split('\n').sort()).toEqual([
      `removed ${join(dir, 'live.ckpt.1.version-1-20260101T000000000Z')}`,
      `removed ${join(dir, 'live.ckpt.expired-20260101T000000000Z')}`,
    ]);
    expect(readdirSync(dir)).toEqual(['live.ckpt']);
  });
});

describe('exit codes and help', () => {
  test.each([
    [['bogus'], 2, /^resume: unknown command `bogus`\nUsage: resume <command>/],
    [[], 2, /^resume: a command is needed\n/],
    [['show'], 2, /^resume: `resume show` needs a checkpoint name\n/],
    [['prune'], 2, /^resume: `resume prune` needs --older-than <age> or --expired\n/],
    [['prune', '--older-than', 'soon'], 2, /^resume: Expected `older-than` to be milliseconds/],
    [['list', '--colour'], 2, /^resume: Unknown option '--colour'/],
  ])('resume %j exits %i with a one-line error', (args, code, message) => {
    const run = resume(args);
    expect(run.code).toBe(code);
    expect(run.err).toMatch(message);
    expect(run.out).toBe('');
  });

  test('a missing checkpoint is a failure naming the folder', () => {
    const dir = tempDir();
    expect(resume(['show', 'nope', '--dir', dir])).toEqual({
      code: 1,
      out: '',
      err: `resume: no checkpoint "nope" in ${dir}\n`,
    });
  });

  test.each(['list', 'show', 'export', 'rm', 'prune'])(
    'resume %s --help prints its usage',
    (command) => {
      const run = resume([command, '--help']);
      expect(run.code).toBe(0);
      expect(run.out).toMatch(new RegExp(`^Usage: resume ${command}`));
    },
  );
});
