/**
 * `mathRandom: true`: while a checkpoint is open, `Math.random` draws from its seeded
 * generator, so third-party code that calls `Math.random` is deterministic and resumes exactly.
 *
 * Installs form a stack: `Math.random` is always the generator of the newest install still in
 * place, and the original function comes back when the last one is removed. Removing an install
 * that is not the newest (checkpoints closed out of order) takes it out of the stack without
 * touching the newer one, so `Math.random` never keeps drawing from a closed checkpoint.
 * Someone else's replacement of `Math.random` made meanwhile (a test mock) is left in place.
 *
 * Code that keeps a reference to `Math.random` taken before any checkpoint exists (lodash
 * does, at import) never sees those replacements. `routeMathRandom()` (the
 * `resumable-state/register` preload) installs one permanent router at start instead: it
 * draws from the newest install, or from the engine's own generator when there is none, and
 * installs then only push onto the stack (#14.2).
 *
 * The stack lives on `globalThis`, so two copies of this module (a bundle and a
 * `node_modules` copy, or the preload and the app) share one stack and one router.
 *
 * @module
 */

interface Install {
  readonly next: () => number;
}

interface Routing {
  /** Current installs, oldest first. */
  readonly installs: Install[];
  /** `Math.random` as it was before the first install in place, or before the router. */
  original: (() => number) | undefined;
  /** The permanent router, once `routeMathRandom()` ran. */
  router: (() => number) | undefined;
}

const KEY = Symbol.for('resumable-state.math-random');
const routing: Routing =
  ((globalThis as Record<symbol, unknown>)[KEY] as Routing | undefined) ??
  (((globalThis as Record<symbol, unknown>)[KEY] = {
    installs: [],
    original: undefined,
    router: undefined,
  } satisfies Routing) as Routing);

/** Sets `Math.random` for the top of the stack, unless someone else replaced ours meanwhile. */
function apply(expected: () => number): void {
  if (Math.random !== expected) return; // replaced by someone else: theirs stays
  const top = routing.installs[routing.installs.length - 1];
  Math.random = top === undefined ? routing.original! : top.next;
  if (top === undefined) routing.original = undefined;
}

/**
 * Routes `Math.random` through `next` (a function returning a double in [0, 1), such as the
 * bound `chp.random.next`) until the returned function is called; calling that again does
 * nothing.
 */
export function installMathRandom(next: () => number): () => void {
  if (typeof next !== 'function') {
    throw new TypeError(`Expected \`next\` to be a function, got \`${String(next)}\``);
  }
  const { installs, router } = routing;
  const install: Install = { next };
  // With the router in place, Math.random already follows the top of the stack.
  const routed = router !== undefined && Math.random === router;
  if (!routed) {
    if (installs.length === 0) routing.original = Math.random;
    Math.random = next;
  }
  installs.push(install);
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    const index = installs.lastIndexOf(install);
    if (index === -1) return;
    const wasTop = index === installs.length - 1;
    installs.splice(index, 1);
    // A lower install leaves Math.random to the newer ones above it.
    if (wasTop && !routed) apply(next);
  };
}

/**
 * Replaces `Math.random` once and for all by a router that draws from the newest open
 * `mathRandom` checkpoint's generator, or from the engine's own generator when none is open.
 * Idempotent. Run it before anything captures `Math.random`.
 */
export function routeMathRandom(): void {
  if (routing.router !== undefined) return;
  const engine = Math.random;
  const { installs } = routing;
  const router = function random(): number {
    const top = installs[installs.length - 1];
    return top === undefined ? engine() : top.next();
  };
  routing.router = router;
  Math.random = router;
}
