import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
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
    expect(shown.out).toMatch(
      new RegExp(
        `\nwritten {3}by resumable-state@\\S+ on Node ${process.version.replaceAll('.', '\\.')}, pid \\d+ on `,
      ),
    );
    expect(shown.out).toContain(
      'state\n  step: number 12\n  big: Float64Array(1000000), 7.6 MB\n  names: Array(2)\n  byId: Map(1)\n',
    );
    const json = JSON.parse(resume(['show', name, '--dir', dir, '--json']).out);
    expect(json.info.runtime).toBe(`Node ${process.version}`);
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
    [['bogus'], 2, /^resume: Unknown command "bogus"\.\nUsage: resume <command>/],
    [[], 2, /^resume: a command is needed\n/],
    [['show'], 2, /^resume: `resume show` needs a checkpoint name\n/],
    [['prune'], 2, /^resume: `resume prune` needs --older-than <age> or --expired\n/],
    [
      ['prune', '--older-than', 'soon'],
      2,
      /^resume: Expected --older-than to be an age like 30m, 12h, 7d, 2w or a number of days, got 'soon'\n/,
    ],
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

describe('help, suggestions and messages (#14.5)', () => {
  const usage = 'Usage: resume <command> [options]\n';

  test.each([['--help'], ['-h'], ['help']])('resume %s prints the usage and exits 0', (arg) => {
    const run = resume([arg]);
    expect(run.code).toBe(0);
    expect(run.err).toBe('');
    expect(run.out.startsWith(usage)).toBe(true);
    expect(run.out).toContain(
      '\n  help [command]             this text, or the usage of one command\n',
    );
  });

  test('resume help <command> is resume <command> --help', () => {
    const help = resume(['help', 'prune']);
    expect(help).toEqual(resume(['prune', '--help']));
    expect(help.code).toBe(0);
    expect(help.out.split('\n')[0]).toBe(
      'Usage: resume prune (--older-than <age> | --expired) [--dir <folder>]',
    );
  });

  test.each([
    [['lst'], 'resume: Unknown command "lst". Did you mean "list"?'],
    [['prnue', '--expired'], 'resume: Unknown command "prnue". Did you mean "prune"?'],
    [['help', 'shwo'], 'resume: Unknown command "shwo". Did you mean "show"?'],
    [['frobnicate'], 'resume: Unknown command "frobnicate".'],
    [['list', '--jsn'], "resume: Unknown option '--jsn'. Did you mean '--json'?"],
    [
      ['prune', '--older-then', '7d'],
      "resume: Unknown option '--older-then'. Did you mean '--older-than'?",
    ],
    [['show', 'x', '--yes'], "resume: Unknown option '--yes'"],
  ])('resume %j exits 2 and says: %s', (args, line) => {
    const run = resume(args);
    expect(run.code).toBe(2);
    expect(run.out).toBe('');
    expect(run.err.split('\n')[0]).toBe(line);
    expect(run.err.split('\n')[1]).toMatch(/^Usage: resume /);
  });

  test('export of a missing checkpoint names it and the folder, like show', () => {
    const dir = tempDir();
    expect(resume(['export', 'nope', '--dir', dir])).toEqual({
      code: 1,
      out: '',
      err: `resume: no checkpoint "nope" in ${dir}\n`,
    });
  });

  test('list marks a checkpoint held by a live process, with its pid', () => {
    const dir = tempDir();
    saved(dir, 'idle', { a: 1 });
    const chp = new Checkpoint({ name: 'busy', dir, signals: false, log: false });
    chp.restore({ a: 1 });
    chp.save();
    try {
      const lines = resume(['list', dir]).out.trimEnd().split('\n');
      expect(lines.find((l) => l.startsWith('busy '))).toMatch(
        new RegExp(
          `^busy +\\S+ +\\d+s +1 +\\d+ B +1 +in use \\(pid ${process.pid}\\) +\\(top level\\) `,
        ),
      );
      expect(lines.find((l) => l.startsWith('idle '))).toMatch(/ 1 +ok +saved /);
      const json = JSON.parse(resume(['list', dir, '--json']).out) as Record<string, unknown>[];
      const busy = json.find((l) => l.name === 'busy')!;
      expect([busy.status, busy.pid]).toEqual(['in use', process.pid]);
      expect(json.find((l) => l.name === 'idle')!.status).toBe('ok');
    } finally {
      chp.close();
    }
  });

  test('prune says what it kept and why', () => {
    const dir = tempDir();
    savedLongAgo(dir, 'ancient');
    savedLongAgo(dir, 'held');
    saved(dir, 'recent', { a: 1 });
    writeFileSync(join(dir, 'broken.ckpt'), 'not a checkpoint');
    // Opening takes the lock; restore() would move the expired state aside, so it is not called.
    const chp = new Checkpoint({ name: 'held', dir, signals: false, log: false });
    try {
      const run = resume(['prune', '--older-than', '7d', '--dir', dir]);
      expect(run).toEqual({
        code: 0,
        out: [
          `removed ${join(dir, 'ancient.ckpt')}`,
          `kept "held": older than 7d but in use by process ${process.pid}`,
          `kept "broken": its age cannot be read (Checkpoint file ${join(dir, 'broken.ckpt')} is corrupt: not a checkpoint file (bad magic))`,
          '',
        ].join('\n'),
        err: '',
      });
      expect(readdirSync(dir).sort()).toEqual([
        'broken.ckpt',
        'held.ckpt',
        'held.lock',
        'recent.ckpt',
      ]);
    } finally {
      chp.close();
    }
  });

  test('--older-than takes a plain number as days', () => {
    const dir = tempDir();
    savedLongAgo(dir, 'ancient');
    saved(dir, 'recent', { a: 1 });
    expect(resume(['prune', '--older-than', '7', '--dir', dir])).toEqual({
      code: 0,
      out: `removed ${join(dir, 'ancient.ckpt')}\n`,
      err: '',
    });
    expect(resume(['prune', '--older-than', '7', '--dir', dir]).out).toBe('nothing to remove\n');
    expect(readdirSync(dir)).toEqual(['recent.ckpt']);
  });
});

describe('output a file cannot use to drive the terminal (#11.12)', () => {
  const evil = '\u001b]0;pwned\u0007\u001b[2J';

  /** A checkpoint whose every string from the file carries escape sequences. */
  function crafted(dir: string): string {
    const name = `job${evil}`;
    const meta = {
      name,
      key: `{"k":"${evil}"}`,
      source: { file: `/src/${evil}.mjs`, function: `run${evil}` },
      createdAt: new Date().toISOString(),
      savedAt: new Date().toISOString(),
      saves: 1,
      library: `resumable-state@0.1.0${evil}`,
      node: 'v20.0.0',
      host: `host${evil}`,
      pid: 1,
    };
    const envelope = {
      state: { [`field${evil}`]: `value${evil}`, [`map${evil}`]: new Map([[evil, 1]]) },
      random: { algorithm: 'xoshiro128**', seed: 1, s: [1, 2, 3, 4], spare: null },
      tracked: {},
      loops: new Map([[`loop${evil}`, 3]]),
    };
    fileStore(dir).write(name, packCheckpoint(meta, encodeState(envelope), 'none'), 2);
    return name;
  }

  test('list, show, export, rm and prune print no raw ESC or BEL, whatever the file holds', () => {
    const dir = tempDir();
    const name = crafted(dir);
    const runs = [
      resume(['list', dir]),
      resume(['list', dir, '--json']),
      resume(['show', name, '--dir', dir]),
      resume(['show', name, '--dir', dir, '--json']),
      resume(['export', name, '--dir', dir]),
      resume(['show', `other${evil}`, '--dir', dir]),
      resume([`lst${evil}`]),
      resume(['prune', '--older-than', `x${evil}`, '--dir', dir]),
      resume(['rm', name, '--dir', dir, '--yes']),
    ];
    for (const run of runs) {
      expect(run.out + run.err).not.toContain('\u001b');
      expect(run.out + run.err).not.toContain('\u0007');
    }
    const [listed, listedJson, shown, shownJson, exported, missing] = runs;
    expect(listed!.out).toContain('job\\x1b]0;pwned\\x07\\x1b[2J ');
    expect(shown!.out).toContain('name      job\\x1b]0;pwned\\x07\\x1b[2J\n');
    expect(shown!.out).toContain(
      '  field\\x1b]0;pwned\\x07\\x1b[2J: string "value\\u001b]0;pwned\\u0007\\u001b[2J"\n',
    );
    expect(shown!.out).toContain('pid 1 on host\\x1b]0;pwned\\x07\\x1b[2J\n');
    expect(shown!.out).toContain('  loop\\x1b]0;pwned\\x07\\x1b[2J: 3 done');
    // JSON stays exact: parsed, the strings are what the file holds.
    expect((JSON.parse(listedJson!.out) as { name: string }[])[0]!.name).toBe(name);
    expect(JSON.parse(shownJson!.out).info.host).toBe(`host${evil}`);
    expect(Object.keys(JSON.parse(exported!.out))).toEqual([`field${evil}`, `map${evil}`]);
    expect(missing!.err).toBe(
      `resume: no checkpoint "other\\x1b]0;pwned\\x07\\x1b[2J" in ${dir}\n`,
    );
    expect(runs[8]!.code).toBe(0);
  });

  test('C1 controls, bidi overrides and lone surrogates are escaped too', () => {
    const dir = tempDir();
    saved(dir, 'a\u009b2J\u202egnp.exe\ud800', { x: 1 });
    const { out } = resume(['list', dir]);
    expect(out).toContain('a\\x9b2J\\u202egnp.exe\\ud800 ');
    expect(out).not.toMatch(/[\u0080-\u009f\u202e\ud800]/);
    const json = resume(['list', dir, '--json']).out;
    expect(json).toContain('"name": "a\\u009b2J\\u202egnp.exe\\ud800"');
  });

  test('export --out writes the file 0600, replacing one that was readable by others', () => {
    const dir = tempDir();
    saved(dir, 'private', { secret: 's3cr3t' });
    const file = join(dir, 'out.json');
    writeFileSync(file, 'old');
    chmodSync(file, 0o644);
    expect(resume(['export', 'private', '--dir', dir, '--out', file]).code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ secret: 's3cr3t' });
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
