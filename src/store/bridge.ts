/**
 * TEMPORARY stub: the synchronous bridge to asynchronous stores is being written on main and
 * replaces this file at merge.
 */
import type { StoreTarget } from '../writer/protocol.js';
import type { CheckpointStore } from './store.js';

/** Options of `bridgedStore`. */
export interface BridgeOptions {
  location(name: string): string;
  cache?: string;
}

/** The synchronous facade over an asynchronous store built from `target` (not yet). */
export function bridgedStore(_target: StoreTarget, _options: BridgeOptions): CheckpointStore {
  throw new Error('not yet');
}
