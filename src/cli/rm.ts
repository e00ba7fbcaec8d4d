/** `resume rm`: delete every file of one checkpoint. */
import { createInterface } from 'node:readline/promises';
import { checkpointFile, checkpointFiles } from '../inspect.js';
import { printable } from '../printable.js';
import { holder, lockOf, removeFiles } from './files.js';

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) return true;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(`${printable(question)} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export async function rm(dir: string, name: string, yes: boolean): Promise<string> {
  const files = checkpointFiles(dir, name);
  if (files.length === 0) throw new Error(`no checkpoint "${name}" in ${dir}`);
  const pid = holder(lockOf(checkpointFile(dir, name)));
  if (pid !== undefined) throw new Error(`checkpoint "${name}" is in use by process ${pid}`);
  if (!yes && !(await confirm(`Remove ${files.length} files of "${name}"?`))) return 'kept';
  return removeFiles(files).join('\n');
}
