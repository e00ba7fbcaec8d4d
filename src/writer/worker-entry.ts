/**
 * Where the background thread's code comes from (#12.3), first match wins:
 * 1. `globalThis.__bundlerPathsOverrides['resumable-state-worker']`: a file the app ships
 *    itself (pino's convention, for setups that must not `eval`);
 * 2. the code built into the library as a string (dist/), started with `eval`: works from
 *    any bundle, with no file of ours beside it;
 * 3. worker.js next to this module: running from sources (tests), or a build made by
 *    `tsc` alone.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WORKER_SOURCE } from './worker-source.js';

/** Key of the override in `globalThis.__bundlerPathsOverrides`. */
export const WORKER_OVERRIDE = 'resumable-state-worker';

export type WorkerEntry = { code: string } | { file: string | URL };

/** The code or file to start; throws, naming the file, when a file is missing. */
export function workerEntry(): WorkerEntry {
  const overrides = (globalThis as { __bundlerPathsOverrides?: Record<string, unknown> })
    .__bundlerPathsOverrides;
  const override = overrides?.[WORKER_OVERRIDE];
  if (override !== undefined) {
    if (typeof override !== 'string' && !(override instanceof URL)) {
      throw new TypeError(
        `Expected \`__bundlerPathsOverrides['${WORKER_OVERRIDE}']\` to be a path or URL, got ${typeof override}`,
      );
    }
    return { file: existing(override) };
  }
  if (WORKER_SOURCE !== undefined) return { code: WORKER_SOURCE };
  return { file: existing(new URL('./worker.js', import.meta.url)) };
}

// A missing worker file only shows as an 'error' event once the event loop turns, which a
// busy loop never lets happen: check first, so the failure is said at open.
function existing(file: string | URL): string | URL {
  const path = typeof file === 'string' && !file.startsWith('file:') ? file : fileURLToPath(file);
  if (!existsSync(path)) throw new Error(`the worker file ${path} does not exist`);
  return file;
}
