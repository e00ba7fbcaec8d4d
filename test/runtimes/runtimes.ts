/**
 * The runtimes under test, from `RUNTIMES` (JSON `{ "22": "/path/to/node", "bun": "/path/to/bun",
 * "deno": "/path/to/deno", … }`, set by scripts/runtimes.mjs); without it, only the Node
 * running the tests.
 */
export interface Runtime {
  /** `20`…`26` for Node, `bun`, `deno`. */
  major: string;
  kind: 'node' | 'bun' | 'deno';
  bin: string;
  /** Arguments before the script: `run -A` for Deno (every permission, as `node` has). */
  prefix: string[];
}

export function runtimes(): Runtime[] {
  const given = process.env.RUNTIMES;
  if (given === undefined || given === '') {
    return [runtime(process.versions.node.split('.')[0]!, process.execPath)];
  }
  return Object.entries(JSON.parse(given) as Record<string, string>).map(([major, bin]) =>
    runtime(major, bin),
  );
}

function runtime(major: string, bin: string): Runtime {
  const kind = major === 'bun' || major === 'deno' ? major : 'node';
  return { major, kind, bin, prefix: kind === 'deno' ? ['run', '-A'] : [] };
}

/** `Node 22`, `Bun`, `Deno`. */
export const runtimeLabel = (r: Runtime) =>
  r.kind === 'node' ? `Node ${r.major}` : r.kind === 'bun' ? 'Bun' : 'Deno';
