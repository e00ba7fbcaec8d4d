/** `resume show`: metadata and a summary of the saved state. */

import { formatAge } from '../durations.js';
import { readCheckpointFile } from '../inspect.js';
import { printable } from '../printable.js';
import { existing } from './files.js';
import { formatBytes, summarize } from './format.js';
import { toJson } from './output.js';

export function show(dir: string, name: string, json: boolean): string {
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
  if (json) return toJson({ info, state: summary, loops: positions });
  // Every string here comes from the file: one escaped line each (#11.12).
  const p = (value: unknown) => printable(String(value));
  const lines = [
    `name      ${p(info.name)}`,
    ...(info.key !== undefined ? [`key       ${p(info.key)}`] : []),
    ...(info.version !== undefined ? [`version   ${p(JSON.stringify(info.version))}`] : []),
    `saved     ${p(info.savedAt)} (${formatAge(Date.now() - Date.parse(info.savedAt))} ago), save #${p(info.saves)}, created ${p(info.createdAt)}`,
    `source    ${p(info.source.function ?? '(top level)')} ${p(info.source.file ?? '')}`.trimEnd(),
    `size      ${formatBytes(info.storedBytes)} stored, ${formatBytes(info.rawBytes)} encoded (${p(info.codec)})`,
    `seed      ${p(info.seed)}`,
    `written   by ${p(info.library)} on ${p(info.runtime ?? `Node ${info.node}`)}, pid ${p(info.pid)} on ${p(info.host)}`,
    'state',
    ...(fields.length === 0
      ? [`  ${p(summarize(state))}`]
      : fields.map((k) => `  ${p(k)}: ${p(summary[k])}`)),
  ];
  const loopKeys = Object.keys(positions);
  if (loopKeys.length > 0) {
    lines.push('loops', ...loopKeys.map((k) => `  ${p(k)}: ${p(positions[k])} done`));
  }
  return lines.join('\n');
}
