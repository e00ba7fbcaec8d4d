/** `resume prune`: delete old checkpoints, or the files moved aside; say what was kept and why. */
import { basename } from 'node:path';
import { checkpointFiles, listCheckpoints } from '../inspect.js';
import { printable } from '../printable.js';
import { isAsideFile } from '../store/file-layout.js';
import { filesIn, holder, lockOf, removeFiles } from './files.js';

export function pruneAside(dir: string): string {
  const files = filesIn(dir).filter((f) => isAsideFile(basename(f)));
  return files.length === 0 ? 'nothing to remove' : removeFiles(files).join('\n');
}

export function pruneOlderThan(dir: string, age: number, shown: string): string {
  const now = Date.now();
  const removed: string[] = [];
  const kept: string[] = [];
  for (const l of listCheckpoints(dir)) {
    const name = `"${printable(l.name)}"`;
    if (l.info === undefined) {
      kept.push(`kept ${name}: its age cannot be read (${printable(l.error ?? 'no metadata')})`);
      continue;
    }
    if (now - Date.parse(l.info.savedAt) <= age) continue;
    const pid = holder(lockOf(l.file));
    if (pid !== undefined) {
      kept.push(`kept ${name}: older than ${shown} but in use by process ${pid}`);
      continue;
    }
    removed.push(...removeFiles(checkpointFiles(dir, l.name)));
  }
  return [...(removed.length === 0 ? ['nothing to remove'] : removed), ...kept].join('\n');
}
