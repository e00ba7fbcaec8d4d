/** The step log (src/step-log.ts): journal epochs, rotation, folds, and who it keeps alive. */
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { cleanedAfterEach } from './helpers.js';

const { tempDir } = cleanedAfterEach('rs-step-log-');
const fixture = (name: string) => new URL(`./fixtures/step-log/${name}`, import.meta.url).pathname;

describe('step log', () => {
  // #16.2: the journal writer's exit hook held the checkpoint through the sink's closure.
  test.each(['file', 'memory', 'no-journal'])(
    'an unclosed checkpoint that ran once() steps is garbage-collected (%s store)',
    (kind) => {
      const run = spawnSync(
        process.execPath,
        ['--expose-gc', fixture('unclosed-once.mjs'), tempDir(), kind],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(run.stderr).toBe('');
      expect(run.stdout).toBe('10\n');
    },
  );
});
