/** The files the `resume` commands read and write, and who holds a checkpoint. */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { checkpointFile } from '../inspect.js';
import { isProcessAlive, readLockOwner } from '../lock.js';
import { defaultDir } from '../naming.js';
import { lockOfLatest, tempFile } from '../store/file-layout.js';

export function folder(dir: string | undefined): string {
  // Found from the current directory the way the library finds it from the calling file.
  return dir !== undefined ? resolve(dir) : defaultDir(join(process.cwd(), 'resume'));
}

/** Path of checkpoint `name`, or an error naming the folder when there is none. */
export function existing(dir: string, name: string): string {
  const file = checkpointFile(dir, name);
  if (!existsSync(file)) throw new Error(`no checkpoint "${name}" in ${dir}`);
  return file;
}

/** `<base>.lock` next to the checkpoint file `<base>.ckpt`. */
export function lockOf(file: string): string {
  return lockOfLatest(file);
}

/**
 * The live process holding the lock file `lock`, if any: the lock names a pid on this host
 * that is alive and not this process (a lock of another host cannot be judged from here).
 */
export function holder(lock: string): number | undefined {
  // Read without blocking or following a link: a FIFO planted there must not hang us (#11.8).
  const owner = readLockOwner(lock);
  if (owner === undefined) return undefined;
  const { pid, host } = owner;
  return host === hostname() && pid !== process.pid && isProcessAlive(pid) ? pid : undefined;
}

export function removeFiles(files: string[]): string[] {
  for (const f of files) rmSync(f, { force: true });
  return files.map((f) => `removed ${f}`);
}

export function filesIn(dir: string): string[] {
  try {
    return readdirSync(dir).map((e) => join(dir, e));
  } catch {
    return [];
  }
}

/** Writes `text` to `path` as the library writes checkpoints: 0600, temp, fsync, rename, fsync folder. */
export function writeDurably(path: string, text: string): void {
  const temp = tempFile(path);
  let fd: number | undefined = openSync(temp, 'wx', 0o600);
  try {
    const bytes = Buffer.from(text);
    for (let at = 0; at < bytes.byteLength; ) at += writeSync(fd, bytes, at);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    throw err;
  }
  const dirFd = openSync(dirname(resolve(path)), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
