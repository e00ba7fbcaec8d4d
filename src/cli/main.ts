#!/usr/bin/env node
/**
 * The `resume` command: see, export and clean up checkpoints. It uses only the public API.
 * Exit codes: 0 success, 1 failure, 2 bad usage.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import {
  type CheckpointListing,
  checkpointFile,
  checkpointFiles,
  listCheckpoints,
  readCheckpointFile,
} from '../inspect.js';
import { isProcessAlive } from '../lock.js';
import { defaultDir, safeFileName } from '../naming.js';
import { parseDuration } from '../options.js';
import { toTaggedJson } from './export-json.js';
import { formatAge, formatBytes, summarize, table } from './format.js';
import { statusCommand } from './status.js';
import { listStore, withLocalCopy } from './store-commands.js';
import { storeReader } from './store-reader.js';
import { parseStoreUrl } from './store-url.js';

const HELP: Record<string, string> = {
  main: `Usage: resume <command> [options]

Commands:
  list [dir]                 checkpoints of a folder: name, saved, age, saves, size, source
  show <name>                metadata and a summary of the saved state
  export <name>              the state as JSON, Map/Set/Date/BigInt/typed arrays tagged
  rm <name>                  delete a checkpoint, every generation of it
  prune --older-than <age>   delete checkpoints saved longer ago than <age> (e.g. 7d)
  prune --expired            delete files moved aside (expired, other schema version)
  status <name>              progress of an array job's shards (--json, --watch)

Options: --dir <folder> (default: .checkpoints of the nearest package, or $RESUME_DIR),
--store s3://bucket/prefix | redis://host:port/prefix and --endpoint <url> (list, show,
export, status), --json (list, show, status), --help. Run \`resume <command> --help\` for more.
`,
  list: 'Usage: resume list [dir] [--store <url>] [--json] [--expire 24h]\n',
  show: 'Usage: resume show <name> [--dir <folder> | --store <url>] [--json]\n',
  export: 'Usage: resume export <name> [--dir <folder> | --store <url>] [--out <file>]\n',
  status:
    'Usage: resume status <name> [--dir <folder> | --store <url> [--endpoint <url>]] [--count <n>] [--json] [--watch]\n',
  rm: 'Usage: resume rm <name> [--dir <folder>] [--yes]\n',
  prune: 'Usage: resume prune (--older-than <age> | --expired) [--dir <folder>]\n',
};

class UsageError extends Error {}

function folder(dir: string | undefined): string {
  // Found from the current directory the way the library finds it from the calling file.
  return dir !== undefined ? resolve(dir) : defaultDir(join(process.cwd(), 'resume'));
}

function needName(positionals: string[], command: string): string {
  const name = positionals[0];
  if (name === undefined) throw new UsageError(`\`resume ${command}\` needs a checkpoint name`);
  return name;
}

function list(dir: string, json: boolean, expire: number): string {
  const now = Date.now();
  const listings = listCheckpoints(dir);
  const status = (l: CheckpointListing) =>
    l.info === undefined ? 'corrupt' : now - Date.parse(l.info.savedAt) > expire ? 'expired' : 'ok';
  if (json) {
    return JSON.stringify(
      listings.map((l) => ({ ...l, status: status(l) })),
      null,
      2,
    );
  }
  if (listings.length === 0) return `no checkpoints in ${dir}`;
  const rows = listings.map((l) => {
    const info = l.info;
    const source = info?.source.file
      ? `${info.source.function ?? '(top level)'} ${info.source.file}`
      : '';
    return [
      l.name,
      info?.savedAt ?? '',
      info ? formatAge(now - Date.parse(info.savedAt)) : '',
      info ? String(info.saves) : '',
      formatBytes(l.bytes),
      String(l.generations),
      status(l),
      info === undefined ? (l.error ?? '') : source,
    ];
  });
  return table(['NAME', 'SAVED', 'AGE', 'SAVES', 'SIZE', 'GENS', 'STATUS', 'SOURCE'], rows);
}

/** Path of checkpoint `name`, or an error naming the folder when there is none. */
function existing(dir: string, name: string): string {
  const file = checkpointFile(dir, name);
  if (!existsSync(file)) throw new Error(`no checkpoint "${name}" in ${dir}`);
  return file;
}

function show(dir: string, name: string, json: boolean): string {
  const { info, state, loops } = readCheckpointFile(existing(dir, name));
  const fields =
    state !== null &&
    typeof state === 'object' &&
    !Array.isArray(state) &&
    !ArrayBuffer.isView(state)
      ? Object.keys(state)
      : [];
  const summary = Object.fromEntries(
    fields.map((k) => [k, summarize((state as Record<string, unknown>)[k])]),
  );
  const positions = loops instanceof Map ? Object.fromEntries(loops) : {};
  if (json) return JSON.stringify({ info, state: summary, loops: positions }, null, 2);
  const lines = [
    `name      ${info.name}`,
    ...(info.key !== undefined ? [`key       ${info.key}`] : []),
    ...(info.version !== undefined ? [`version   ${JSON.stringify(info.version)}`] : []),
    `saved     ${info.savedAt} (${formatAge(Date.now() - Date.parse(info.savedAt))} ago), save #${info.saves}, created ${info.createdAt}`,
    `source    ${info.source.function ?? '(top level)'} ${info.source.file ?? ''}`.trimEnd(),
    `size      ${formatBytes(info.storedBytes)} stored, ${formatBytes(info.rawBytes)} encoded (${info.codec})`,
    `seed      ${String(info.seed)}`,
    `written   by ${info.library} on Node ${info.node}, pid ${info.pid} on ${info.host}`,
    'state',
    ...(fields.length === 0
      ? [`  ${summarize(state)}`]
      : fields.map((k) => `  ${k}: ${summary[k]}`)),
  ];
  const loopKeys = Object.keys(positions);
  if (loopKeys.length > 0) {
    lines.push('loops', ...loopKeys.map((k) => `  ${k}: ${positions[k]} done`));
  }
  return lines.join('\n');
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) return true;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

function removeFiles(files: string[]): string {
  for (const f of files) rmSync(f, { force: true });
  return files.map((f) => `removed ${f}`).join('\n');
}

async function run(argv: string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      json: { type: 'boolean', default: false },
      yes: { type: 'boolean', short: 'y', default: false },
      out: { type: 'string', short: 'o' },
      expire: { type: 'string', default: '24h' },
      'older-than': { type: 'string' },
      expired: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      store: { type: 'string' },
      endpoint: { type: 'string' },
      watch: { type: 'boolean', default: false },
      count: { type: 'string' },
    },
  });
  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError('a command is needed');
  if (!(command in HELP) || command === 'main')
    throw new UsageError(`unknown command \`${command}\``);
  if (values.help) return HELP[command]!.trimEnd();
  // #15.4: a shared store, read without taking any lease.
  if (values.store !== undefined || command === 'status') {
    const store =
      values.store === undefined ? undefined : parseStoreUrl(values.store, values.endpoint);
    const reader = storeReader(
      store,
      folder(command === 'list' ? (rest[0] ?? values.dir) : values.dir),
    );
    try {
      return await storeCommand(command, reader, rest, values);
    } finally {
      await reader.close();
    }
  }
  switch (command) {
    case 'list':
      return list(
        folder(rest[0] ?? values.dir),
        values.json,
        parseDuration(values.expire, 'expire'),
      );
    case 'show':
      return show(folder(values.dir), needName(rest, command), values.json);
    case 'export': {
      const { state } = readCheckpointFile(
        checkpointFile(folder(values.dir), needName(rest, command)),
      );
      const text = JSON.stringify(toTaggedJson(state), null, 2);
      if (values.out === undefined) return text;
      writeFileSync(values.out, `${text}\n`);
      return `wrote ${values.out}`;
    }
    case 'rm': {
      const name = needName(rest, command);
      const dir = folder(values.dir);
      const files = checkpointFiles(dir, name);
      if (files.length === 0) throw new Error(`no checkpoint "${name}" in ${dir}`);
      const pid = holder(dir, name);
      if (pid !== undefined) throw new Error(`checkpoint "${name}" is in use by process ${pid}`);
      if (!values.yes && !(await confirm(`Remove ${files.length} files of "${name}"?`)))
        return 'kept';
      return removeFiles(files);
    }
    default: {
      const dir = folder(values.dir);
      if (values.expired) {
        const aside = /\.ckpt(?:\.\d+)?\.(?:expired|version)-/;
        const files = filesIn(dir).filter((f) => aside.test(f));
        return files.length === 0 ? 'nothing to remove' : removeFiles(files);
      }
      if (values['older-than'] === undefined) {
        throw new UsageError('`resume prune` needs --older-than <age> or --expired');
      }
      const age = parseDuration(values['older-than'], 'older-than');
      const now = Date.now();
      const old = listCheckpoints(dir).filter(
        (l) => l.info !== undefined && now - Date.parse(l.info.savedAt) > age,
      );
      const lines: string[] = [];
      const files: string[] = [];
      for (const l of old) {
        const pid = holder(dir, l.name);
        if (pid === undefined) files.push(...checkpointFiles(dir, l.name));
        else lines.push(`kept ${l.name}: in use by process ${pid}`);
      }
      if (files.length > 0) lines.unshift(removeFiles(files));
      return lines.length === 0 ? 'nothing to remove' : lines.join('\n');
    }
  }
}

async function storeCommand(
  command: string,
  reader: ReturnType<typeof storeReader>,
  rest: string[],
  values: {
    json: boolean;
    watch: boolean;
    count?: string | undefined;
    out?: string | undefined;
    expire: string;
  },
): Promise<string> {
  switch (command) {
    case 'status': {
      const count = values.count === undefined ? undefined : Number(values.count);
      if (count !== undefined && !(Number.isInteger(count) && count >= 1)) {
        throw new UsageError(`--count must be an integer >= 1, got '${values.count}'`);
      }
      const options = { json: values.json, watch: values.watch, count };
      return statusCommand(reader, needName(rest, command), options, (t) =>
        process.stdout.write(t),
      );
    }
    case 'list':
      return listStore(reader, values.json, parseDuration(values.expire, 'expire'));
    case 'show': {
      const name = needName(rest, command);
      return withLocalCopy(reader, name, (dir) => show(dir, name, values.json));
    }
    case 'export': {
      const name = needName(rest, command);
      const { state } = await withLocalCopy(reader, name, (dir) =>
        readCheckpointFile(checkpointFile(dir, name)),
      );
      const text = JSON.stringify(toTaggedJson(state), null, 2);
      if (values.out === undefined) return text;
      writeFileSync(values.out, `${text}\n`);
      return `wrote ${values.out}`;
    }
    default:
      throw new UsageError(`\`resume ${command}\` does not take --store`);
  }
}

function filesIn(dir: string): string[] {
  try {
    return readdirSync(dir).map((e) => join(dir, e));
  } catch {
    return [];
  }
}

/** The live process holding checkpoint `name`, if any (its lock names a live pid here). */
function holder(dir: string, name: string): number | undefined {
  try {
    const lock = JSON.parse(readFileSync(join(dir, `${safeFileName(name)}.lock`), 'utf8')) as {
      pid: number;
      host: string;
    };
    return lock.host === hostname() && isProcessAlive(lock.pid) && lock.pid !== process.pid
      ? lock.pid
      : undefined;
  } catch {
    return undefined;
  }
}

run(process.argv.slice(2)).then(
  (output) => {
    process.stdout.write(`${output}\n`);
  },
  (err: unknown) => {
    const usage =
      err instanceof UsageError ||
      (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION';
    process.stderr.write(`resume: ${(err as Error).message}\n`);
    if (usage) process.stderr.write(HELP.main!);
    process.exitCode = usage || err instanceof TypeError || err instanceof RangeError ? 2 : 1;
  },
);
