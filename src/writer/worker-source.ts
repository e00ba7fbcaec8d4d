/**
 * The background thread's code as one string, started with `new Worker(code, { eval: true })`
 * so that a bundled app needs no worker file beside its bundle (#12.3).
 *
 * Here, in the sources, it is undefined and the thread starts from worker.js. The build
 * (scripts/build-worker.mjs, run by `npm run build`) replaces the compiled dist/ copy of
 * this module with one that exports worker.ts bundled with everything it imports.
 */
export const WORKER_SOURCE: string | undefined = undefined;
