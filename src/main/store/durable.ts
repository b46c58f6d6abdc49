/** Durability helpers for files written beside the store (the key file, the store's rename at setup). */
import { closeSync, fsyncSync, openSync } from 'node:fs';

/** Flushes a file's data, or a directory's entries (so a rename survives a power cut), to the disk. */
export function fsyncPath(target: string): void {
  let fd: number;
  try {
    fd = openSync(target, 'r');
  } catch (error) {
    // Windows cannot open a directory to flush it; NTFS makes a rename durable once it returns.
    const code = (error as NodeJS.ErrnoException).code;
    if (process.platform === 'win32' && (code === 'EISDIR' || code === 'EPERM')) return;
    throw error;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
