/**
 * Waiting for the lease of a holder on another host (#14.3). Its pid cannot be checked from
 * here, so its lease tells: renewed while we wait, the holder is alive and we give up;
 * expired, it is gone and the next attempt takes the lease over (fenced: should it be alive
 * after all, its next commit is refused).
 */
import { CheckpointLockedError } from '../errors.js';
import type { LeaseState } from './remote.js';
import type { LockOptions } from './store.js';

/** Added to the lease's remaining time for the default wait: clock skew, polling, a slow store. */
export const WAIT_MARGIN_MS = 2000;
/** Longest sleep between two looks at the lease, so that a renewal is seen soon. */
const POLL_MS = 1000;
/** Expiry moving by less than this is the store's rounding, not a renewal. */
const JITTER_MS = 10;

/**
 * Calls `attempt` until it takes the lease (returns undefined). While it returns the lease
 * of a holder on another host, waits for that lease to expire, at most `options.wait` ms
 * (default: its remaining time plus a margin), with one notice line; throws
 * CheckpointLockedError when the holder renews it or when the wait is over.
 */
export function waitForLease(
  name: string,
  location: string,
  options: LockOptions,
  attempt: (mayWait: boolean) => LeaseState | undefined,
): void {
  const first = attempt(options.wait !== 0);
  if (first === undefined) return;
  const wait = options.wait ?? Math.max(0, first.expiresIn) + WAIT_MARGIN_MS;
  const deadline = Date.now() + wait;
  const { holder } = first;
  options.notice?.(
    `"${name}" is locked by pid ${holder.pid}@${holder.host}, another host: waiting up to ${formatWait(wait)} for its lease to expire (${location})`,
  );
  for (let lease = first; ; ) {
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new CheckpointLockedError(
        `Checkpoint "${name}" is still locked by pid ${holder.pid} on host ${holder.host} after waiting ${formatWait(wait)} for its lease (option lockWait) (${location})`,
        holder,
      );
    }
    sleep(Math.min(left, POLL_MS, Math.max(50, lease.expiresIn + 25)));
    const next = attempt(true);
    if (next === undefined) return;
    const by = next.holder;
    if (by.token !== holder.token || next.expiresAt > first.expiresAt + JITTER_MS) {
      const how = by.token === holder.token ? 'renewed its lease' : 'took the lease';
      throw new CheckpointLockedError(
        `Checkpoint "${name}" is in use by pid ${by.pid} on host ${by.host}, which ${how} while this process waited (${location})`,
        by,
      );
    }
    lease = next;
  }
}

/** `3.0s`, `45s`: a wait for a message. */
export function formatWait(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

/** Blocks this thread for `ms` (the lock is taken inside a synchronous constructor). */
export function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
