/**
 * Who holds a lease, said precisely enough that another process can tell, on the holder's
 * own machine, whether the holder is still running (#14.3).
 *
 * A pid means something only inside one pid namespace of one boot of one machine. The host
 * name alone does not say that: docker containers may share one (`--hostname`, host
 * networking) while each has its own pids, and a machine that rebooted reuses pids from 1.
 * So a holder is judged only when its host name, boot id (`/proc/sys/kernel/random/boot_id`,
 * which containers share with their machine) and pid namespace (`/proc/self/ns/pid`) all
 * equal ours; its start time then tells a reused pid from the holder itself. Anywhere else
 * (another machine, another container, a restarted container: it gets a new pid namespace)
 * the answer is "unknown" and the lease is waited for instead. Where /proc is missing (macOS,
 * Windows) the host name alone decides, as for the file lock.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { isProcessAlive } from './lock.js';

/** A process as recorded in a lease. The optional fields are absent where /proc is. */
export interface ProcessIdentity {
  pid: number;
  host: string;
  /** Boot id of the machine (Linux). */
  boot?: string;
  /** Pid namespace, e.g. `pid:[4026531836]` (Linux). */
  pidns?: string;
  /** Start time of the process, in clock ticks since boot (Linux). */
  start?: string;
}

/** This process, as its leases record it. */
export function currentProcess(): ProcessIdentity {
  const me: ProcessIdentity = { pid: process.pid, host: hostname() };
  const { boot, pidns } = machine();
  const start = processStart(process.pid);
  if (boot !== undefined) me.boot = boot;
  if (pidns !== undefined) me.pidns = pidns;
  if (start !== undefined) me.start = start;
  return me;
}

/**
 * `'dead'` when `holder` ran in this very pid space and is gone (or its pid now belongs to
 * another process), `'alive'` when it still runs, `'unknown'` when it ran elsewhere.
 */
export function judgeProcess(holder: ProcessIdentity): 'alive' | 'dead' | 'unknown' {
  const here = machine();
  if (holder.host !== hostname() || holder.boot !== here.boot || holder.pidns !== here.pidns) {
    return 'unknown';
  }
  if (!isProcessAlive(holder.pid)) return 'dead';
  return holder.start !== undefined && holder.start !== processStart(holder.pid) ? 'dead' : 'alive';
}

let cached: { boot?: string; pidns?: string } | undefined;

function machine(): { boot?: string; pidns?: string } {
  if (cached !== undefined) return cached;
  cached = {};
  try {
    cached.boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {}
  try {
    cached.pidns = readlinkSync('/proc/self/ns/pid');
  } catch {}
  return cached;
}

/** Start time of a process (Linux: clock ticks since boot, field 22 of /proc/<pid>/stat). */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
