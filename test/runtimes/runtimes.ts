/**
 * The Node binaries under test, from `RUNTIMES` (JSON `{ "22": "/path/to/node", … }`, set by
 * scripts/runtimes.mjs); without it, only the Node running the tests.
 */
export interface Runtime {
  major: string;
  bin: string;
}

export function runtimes(): Runtime[] {
  const given = process.env.RUNTIMES;
  if (given === undefined || given === '') {
    return [{ major: process.versions.node.split('.')[0]!, bin: process.execPath }];
  }
  return Object.entries(JSON.parse(given) as Record<string, string>).map(([major, bin]) => ({
    major,
    bin,
  }));
}
