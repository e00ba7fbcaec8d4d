/**
 * Work to do synchronously when the process exits (normal end, process.exit, or after an
 * uncaught exception). The listener is installed only while something is registered.
 */
const tasks = new Map<() => void, ((line: string) => void) | undefined>();

// Last registered, first run (like destructors): a checkpoint's pending write is flushed
// before the lock taken earlier is released.
function runAll(): void {
  for (const [task, log] of [...tasks].reverse()) {
    try {
      task();
    } catch (err) {
      const line = `exit task failed: ${String(err)}`;
      if (log === undefined) warnNow(line);
      else log(`resumable-state: ${line}`);
    }
  }
}

/**
 * Runs `task` at exit; returns a function that unregisters it. A task that throws is said
 * through `log` (its checkpoint's `log` option, #16.5), or as a process warning without one.
 */
export function onExit(task: () => void, log?: (line: string) => void): () => void {
  if (tasks.size === 0) process.on('exit', runAll);
  tasks.set(task, log);
  return () => {
    tasks.delete(task);
    if (tasks.size === 0) process.removeListener('exit', runAll);
  };
}

/** The type of our process warnings: notices no checkpoint owns (#16.5). */
export const WARNING = 'ResumableStateWarning';

/**
 * `process.emitWarning`, synchronously: it emits on the next tick, which never comes once
 * the process is exiting. The 'warning' listeners (Node's printer, unless `--no-warnings`,
 * and the user's) run now.
 */
export function warnNow(message: string): void {
  const warning = new Error(message);
  warning.name = WARNING;
  process.emit('warning', warning);
}
