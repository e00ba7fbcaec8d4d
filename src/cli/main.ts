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
import { statusCommand } from './status.js';
import { listStore, withLocalCopy } from './store-commands.js';
import { storeReader } from './store-reader.js';
import { parseStoreUrl } from './store-url.js';
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
  // #15.4: a shared store (or an array job's shards), read without taking any lock or lease.
  if (values.store !== undefined || command === 'status') {
    const url = values.store as string | undefined;
    const store =
      url === undefined ? undefined : parseStoreUrl(url, values.endpoint as string | undefined);
    const reader = storeReader(
      store,
      folder((command === 'list' ? (rest[0] ?? values.dir) : values.dir) as string | undefined),
    );
    try {
      return await storeCommand(command, reader, rest, values);
    } finally {
      await reader.close();
    }
  }
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

type Values = Parsed['values'];

/** `list`, `show`, `export` and `status` over a shared store or a folder's shards (#15.4). */
async function storeCommand(
  command: string,
  reader: ReturnType<typeof storeReader>,
  rest: string[],
  values: Values,
): Promise<string> {
  const json = values.json === true;
  switch (command) {
    case 'status': {
      const raw = values.count as string | undefined;
      const count = raw === undefined ? undefined : Number(raw);
      if (count !== undefined && !(Number.isInteger(count) && count >= 1)) {
        throw new UsageError(`--count must be an integer >= 1, got '${raw}'`, command);
      }
      const options = { json, watch: values.watch === true, count };
      return statusCommand(reader, needName(rest, command), options, (t) =>
        process.stdout.write(printableLines(t)),
      );
    }
    case 'list':
      return listStore(reader, json, parseAge(values.expire as string, 'expire'));
    case 'show': {
      const name = needName(rest, command);
      return withLocalCopy(reader, name, (dir) => show(dir, name, json));
    }
    case 'export': {
      const name = needName(rest, command);
      const out = values.out as string | undefined;
      return withLocalCopy(reader, name, (dir) => exportState(dir, name, out));
    }
    default:
      throw new UsageError(`\`resume ${command}\` does not take --store`, command);
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
