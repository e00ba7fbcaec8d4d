/** What the `resume` command accepts: usage texts, per-command options, near-miss suggestions. */
import type { ParseArgsConfig } from 'node:util';
import { parseDuration } from '../options.js';

/** Bad usage: exit code 2, the message, then the usage of `command` (or of `resume`). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

const AGE = `<age> is a duration like 30m, 12h, 7d, 2w, or a plain number of days (7 = 7d).`;

export const HELP: Record<string, string> = {
  main: `Usage: resume <command> [options]

Commands:
  list [dir]                 checkpoints of a folder: name, saved, age, saves, size, source
  show <name>                metadata and a summary of the saved state
  export <name>              the state as JSON, Map/Set/Date/BigInt/typed arrays tagged
  rm <name>                  delete a checkpoint, every generation of it
  prune --older-than <age>   delete checkpoints saved longer ago than <age> (e.g. 7d)
  prune --expired            delete files moved aside (expired, other schema version, foreign)
  status <name>              progress of an array job's shards (--json, --watch)
  help [command]             this text, or the usage of one command

Options: --dir <folder> (default: .checkpoints of the nearest package, or $RESUME_DIR),
--store s3://bucket/prefix | redis://host:port/prefix and --endpoint <url> (list, show,
export, status), --json (list, show, status), --help. Run \`resume <command> --help\` for more.
`,
  list: `Usage: resume list [dir] [--dir <folder> | --store <url>] [--json] [--expire <age>]

Lists the checkpoints of a folder from their headers. STATUS is ok, expired (saved
longer ago than --expire, default 24h), corrupt, or "in use (pid N)" while a live
process on this host holds it. ${AGE}
`,
  show: 'Usage: resume show <name> [--dir <folder> | --store <url>] [--json]\n',
  export: 'Usage: resume export <name> [--dir <folder> | --store <url>] [--out <file>]\n',
  status: `Usage: resume status <name> [--dir <folder> | --store <url> [--endpoint <url>]] [--count <n>] [--json] [--watch]

Progress of an array job: a line per shard of <name> (index, items done/total, last save
and its age, holder and whether its lock or lease is live, running/stopped/done/missing)
and a total line with progress, rate and ETA. --watch refreshes every 2 s until Ctrl-C.
`,
  rm: 'Usage: resume rm <name> [--dir <folder>] [--yes]\n',
  prune: `Usage: resume prune (--older-than <age> | --expired) [--dir <folder>]

Deletes every file of the checkpoints saved longer ago than <age>, or (--expired) the
files moved aside. Says what it kept and why (in use by a live process, unreadable).
${AGE}
`,
  help: 'Usage: resume help [command]\n',
};

type Options = NonNullable<ParseArgsConfig['options']>;

const dir = { type: 'string' } as const;
const json = { type: 'boolean', default: false } as const;
/** A shared store's URL and an S3-compatible endpoint (#15.4). */
const store = { type: 'string' } as const;
const endpoint = { type: 'string' } as const;

/** The options of each command; `--help`/`-h` is accepted by all. */
export const OPTIONS: Record<string, Options> = {
  list: { dir, json, expire: { type: 'string', default: '24h' }, store, endpoint },
  show: { dir, json, store, endpoint },
  export: { dir, out: { type: 'string', short: 'o' }, store, endpoint },
  status: {
    dir,
    json,
    store,
    endpoint,
    watch: { type: 'boolean', default: false },
    count: { type: 'string' },
  },
  rm: { dir, yes: { type: 'boolean', short: 'y', default: false } },
  prune: { dir, 'older-than': { type: 'string' }, expired: { type: 'boolean', default: false } },
  help: {},
};

export const COMMANDS = Object.keys(OPTIONS);

/**
 * Optimal string alignment distance (Damerau-Levenshtein without repeated edits of one
 * substring): insertions, deletions, substitutions and swaps of neighbours cost 1.
 */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate nearest to `word`, if it is near enough to be what was meant. */
export function nearest(word: string, candidates: string[]): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/**
 * An age given on the command line, in ms. A plain number is days (`--older-than 7`): the
 * library's milliseconds would make `prune --older-than 7` delete everything (#14.5).
 */
export function parseAge(value: string, option: string): number {
  if (/^\s*\d+(?:\.\d+)?\s*$/.test(value)) return Number(value) * 86_400_000;
  try {
    return parseDuration(value, option);
  } catch {
    throw new UsageError(
      `Expected --${option} to be an age like 30m, 12h, 7d, 2w or a number of days, got '${value}'`,
    );
  }
}
