// TEMPORARY stub: the real bridge is written on main and replaces this file at merge time.
import type { StoreTarget } from '../writer/protocol.js';
import type { CheckpointStore } from './store.js';

export function bridgedStore(
  _target: StoreTarget,
  _options: { location(name: string): string; cache?: string },
): CheckpointStore {
  throw new Error('not yet');
}
