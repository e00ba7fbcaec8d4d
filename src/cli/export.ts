/** `resume export`: the state as JSON, to stdout or a file. */
import { readCheckpointFile } from '../inspect.js';
import { toTaggedJson } from './export-json.js';
import { existing, writeDurably } from './files.js';
import { toJson } from './output.js';

export function exportState(dir: string, name: string, out: string | undefined): string {
  const { state } = readCheckpointFile(existing(dir, name));
  const text = toJson(toTaggedJson(state));
  if (out === undefined) return text;
  // The state is as private as the checkpoint it came from (#11.12).
  writeDurably(out, `${text}\n`);
  return `wrote ${out}`;
}
