/**
 * `resumable-state/register`: a preload that makes code which captures `Math.random` early
 * (lodash keeps `nativeRandom = Math.random` at import) deterministic and resumable too.
 *
 * ```sh
 * node --import resumable-state/register app.js
 * ```
 * or, as the app's very first import: `import 'resumable-state/register';`
 *
 * From then on `Math.random` draws from the open `mathRandom: true` checkpoint's generator
 * when there is one, and from the engine's own generator otherwise (#14.2).
 *
 * @module
 */
import { routeMathRandom } from './math-random.js';

routeMathRandom();
