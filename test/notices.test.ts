/**
 * #16.5: every notice goes through the owning checkpoint's `log` option (`log: false`
 * silences it, a function receives it), or is a process warning where no checkpoint owns
 * it. Each path runs in a child process: these notices are said while it exits or on a
 * signal.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { cleanedAfterEach } from './helpers.js';

const { tempDir, children } = cleanedAfterEach('rs-notices-');
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

type LogMode = 'default' | 'off' | 'custom';

function runSync(script: string, log: LogMode) {
  const run = spawnSync(process.execPath, [fixture(script), tempDir(), log], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('a background save failing at exit (writer.ts)', () => {
  const said =
    /resumable-state: the last save of "blocked" failed: Cannot save checkpoint "blocked" at .*blocked\.ckpt: EISDIR/;

  test('log: false silences it; the exit code is still 1', () => {
    const run = runSync('writer/exit-fail.mjs', 'off');
    expect(run).toEqual({ status: 1, stdout: 'true\n', stderr: '' });
  });

  test('a log function receives it, and nothing goes to stderr', () => {
    const run = runSync('writer/exit-fail.mjs', 'custom');
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(new RegExp(`^true\\ncustom: ${said.source}`));
    expect(run.status).toBe(1);
  });
});

describe('a batched step record failing at exit (journal-writer.ts)', () => {
  const said =
    'resumable-state: Cannot append to the step journal: ENOSPC: no space left on device, write';

  test('log: false silences it; the exit code is still 1', () => {
    const run = runSync('notices/journal-fails-at-exit.mjs', 'off');
    expect(run).toEqual({ status: 1, stdout: 'stepped\n', stderr: '' });
  });

  test('a log function receives it, and nothing goes to stderr', () => {
    const run = runSync('notices/journal-fails-at-exit.mjs', 'custom');
    expect(run).toEqual({ status: 1, stdout: `stepped\ncustom: ${said}\n`, stderr: '' });
  });

  test('by default it is said on stderr', () => {
    const run = runSync('notices/journal-fails-at-exit.mjs', 'default');
    expect(run).toEqual({ status: 1, stdout: 'stepped\n', stderr: `${said}\n` });
  });
});

describe('a save on a signal that fails (hooks/signals.ts)', () => {
  async function terminated(log: LogMode) {
    const child = spawn(process.execPath, [
      fixture('notices/save-fails-on-signal.mjs'),
      tempDir(),
      log,
    ]);
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    await new Promise<void>((resolve) => {
      const ready = () => (stdout.includes('ready\n') ? resolve() : undefined);
      child.stdout.on('data', ready);
    });
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('close', resolve));
    return { code, stdout, stderr };
  }
  const said = /resumable-state: save on signal failed: Error: disk on fire/;

  test('log: false silences it; the process still exits as SIGTERM would', async () => {
    expect(await terminated('off')).toEqual({ code: 143, stdout: 'ready\n', stderr: '' });
  });

  test('a log function receives it, and nothing goes to stderr', async () => {
    const run = await terminated('custom');
    expect(run.code).toBe(143);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(new RegExp(`^ready\\ncustom: ${said.source}\\n$`));
  });
});

describe('an exit task that throws (hooks/exit.ts)', () => {
  test('goes to the log it was registered with, else it is a process warning', () => {
    const run = spawnSync(
      process.execPath,
      ['--no-warnings', fixture('notices/exit-task-fails.mjs')],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(run).toMatchObject({
      status: 0,
      stdout:
        'log: resumable-state: exit task failed: Error: owned\n' +
        'warning: ResumableStateWarning: exit task failed: Error: no owner\n',
      stderr: '',
    });
  });
});
