/**
 * Work to do synchronously when the process exits (normal end, process.exit, or after an
 * uncaught exception). The listener is installed only while something is registered.
 */
const tasks = new Set<() => void>();

// Last registered, first run (like destructors): a checkpoint's pending write is flushed
// before the lock taken earlier is released.
function runAll(): void {
  for (const task of [...tasks].reverse()) {
    try {
      task();
    } catch (err) {
      process.stderr.write(`resumable-state: exit task failed: ${String(err)}\n`);
    }
  }
}

/** Runs `task` at exit; returns a function that unregisters it. */
export function onExit(task: () => void): () => void {
  if (tasks.size === 0) process.on('exit', runAll);
  tasks.add(task);
  return () => {
    tasks.delete(task);
    if (tasks.size === 0) process.removeListener('exit', runAll);
  };
}
