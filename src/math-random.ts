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
 * @module
 */

interface Install {
  readonly next: () => number;
}

/** Current installs, oldest first. */
const installs: Install[] = [];
/** `Math.random` as it was before the first install in place. */
let original: (() => number) | undefined;

/** Sets `Math.random` for the top of the stack, unless someone else replaced ours meanwhile. */
function apply(expected: () => number): void {
  if (Math.random !== expected) return; // replaced by someone else: theirs stays
  const top = installs[installs.length - 1];
  Math.random = top === undefined ? original! : top.next;
  if (top === undefined) original = undefined;
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
  if (installs.length === 0) original = Math.random;
  const install: Install = { next };
  installs.push(install);
  Math.random = next;
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    const index = installs.lastIndexOf(install);
    if (index === -1) return;
    const wasTop = index === installs.length - 1;
    installs.splice(index, 1);
    // A lower install leaves Math.random to the newer ones above it.
    if (wasTop) apply(next);
  };
}
