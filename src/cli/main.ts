#!/usr/bin/env node
/**
 * The `resume` command: see, export and clean up checkpoints. It uses only the public API.
 * Exit codes: 0 success (help included), 1 failure, 2 bad usage. Everything printed that
 * comes from a file or the command line is escaped so it cannot drive the terminal (#11.12).
 */
import { parseArgs } from 'node:util';
import { printable } from '../printable.js';
import { exportState } from './export.js';
import { folder } from './files.js';
import { list } from './list.js';
import { printableLines } from './output.js';
import { pruneAside, pruneOlderThan } from './prune.js';
import { rm } from './rm.js';
import { show } from './show.js';
import { COMMANDS, HELP, nearest, OPTIONS, parseAge, UsageError } from './usage.js';

const HELP_OPTION = { help: { type: 'boolean', short: 'h', default: false } } as const;
/** Every option of every command, to find the command before its own options are checked. */
const ANY_OPTION = Object.assign({}, ...Object.values(OPTIONS), HELP_OPTION);

function needName(positionals: string[], command: string): string {
  const name = positionals[0];
  if (name === undefined) {
    throw new UsageError(`\`resume ${command}\` needs a checkpoint name`, command);
  }
  return name;
}

/** `Unknown command "lst". Did you mean "list"?` */
function unknownCommand(command: string): UsageError {
  const near = nearest(command, COMMANDS);
  return new UsageError(
    `Unknown command "${command}".${near === undefined ? '' : ` Did you mean "${near}"?`}`,
  );
}

type Parsed = { values: Record<string, string | boolean | undefined>; positionals: string[] };

/** The values and positionals of `argv` for `command`, its options only. */
function parseFor(command: string, argv: string[]): Parsed {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...OPTIONS[command], ...HELP_OPTION },
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const option = /'(-[^']*)'/.exec((err as Error).message)?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option !== undefined) {
      const known = Object.keys(OPTIONS[command]!).concat('help');
      const near = nearest(option.replace(/^--?/, '').split('=')[0]!, known);
      throw new UsageError(
        `Unknown option '${option}'${near === undefined ? '' : `. Did you mean '--${near}'?`}`,
        command,
      );
    }
    if (code?.startsWith('ERR_PARSE_ARGS_')) throw new UsageError((err as Error).message, command);
    throw err;
  }
}

async function run(argv: string[]): Promise<string> {
  // Lenient first pass: which command is it? Its own options are checked next.
  const first = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    options: ANY_OPTION,
  });
  const command = first.positionals[0];
  if (command === undefined) {
    if (first.values.help === true) return HELP.main!;
    throw new UsageError('a command is needed');
  }
  if (!Object.hasOwn(OPTIONS, command)) throw unknownCommand(command);
  const { values, positionals } = parseFor(command, argv);
  const rest = positionals.slice(1);
  if (values.help === true) return HELP[command]!;
  const dir = () => folder(values.dir as string | undefined);
  switch (command) {
    case 'help': {
      const topic = rest[0];
      if (topic === undefined) return HELP.main!;
      if (!Object.hasOwn(OPTIONS, topic)) throw unknownCommand(topic);
      return HELP[topic]!;
    }
    case 'list':
      return list(
        folder((rest[0] ?? values.dir) as string | undefined),
        values.json === true,
        parseAge(values.expire as string, 'expire'),
      );
    case 'show':
      return show(dir(), needName(rest, command), values.json === true);
    case 'export':
      return exportState(dir(), needName(rest, command), values.out as string | undefined);
    case 'rm':
      return rm(dir(), needName(rest, command), values.yes === true);
    default: {
      if (values.expired === true) return pruneAside(dir());
      const age = values['older-than'] as string | undefined;
      if (age === undefined) {
        throw new UsageError('`resume prune` needs --older-than <age> or --expired', command);
      }
      return pruneOlderThan(dir(), parseAge(age, 'older-than'), age);
    }
  }
}

run(process.argv.slice(2)).then(
  (output) => {
    process.stdout.write(`${printableLines(output.trimEnd())}\n`);
  },
  (err: unknown) => {
    const usage = err instanceof UsageError;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`resume: ${printable(message)}\n`);
    if (usage) process.stderr.write(HELP[err.command ?? 'main']!);
    process.exitCode = usage || err instanceof TypeError || err instanceof RangeError ? 2 : 1;
  },
);
