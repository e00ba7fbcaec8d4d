// bench/workload.mjs on any runtime, for bench/runtimes.mjs: gives it the `gc()` it calls
// between timings (Node and Deno: V8's, exposed by --expose-gc; Bun: `Bun.gc(true)`, a full
// synchronous collection), then runs it with the same arguments.
if (typeof globalThis.gc !== 'function' && typeof globalThis.Bun === 'object') {
  globalThis.gc = () => globalThis.Bun.gc(true);
}
await import('./workload.mjs');
