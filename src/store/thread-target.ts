/**
 * How the background thread rebuilds a store (#16.6): thread plumbing, kept out of the
 * public CheckpointStore interface. Our stores that can be written from the background
 * thread (the file store without a custom fs, bridged stores) carry a StoreTarget under a
 * registry symbol, which survives object spread and copies of the library (#12.3).
 */
import type { StoreTarget } from '../writer/protocol.js';
import type { CheckpointStore } from './store.js';

export type { StoreTarget } from '../writer/protocol.js';

const TARGET = Symbol.for('resumable-state.storeTarget');

/** `store`, marked to be rebuilt from `target` in the background thread and written there. */
export function withTarget<S extends CheckpointStore>(store: S, target: StoreTarget): S {
  return Object.assign(store, { [TARGET]: target });
}

/**
 * The background target of `store`, if it has one. A custom store written for 0.x that
 * names a `target` property is still honoured (README "Writing your own store").
 */
export function targetOf(store: CheckpointStore): StoreTarget | undefined {
  const marked = (store as { [TARGET]?: StoreTarget })[TARGET];
  return marked ?? (store as { target?: StoreTarget }).target;
}
