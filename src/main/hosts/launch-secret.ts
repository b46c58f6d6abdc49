/**
 * The per-launch secret of the headless host. Loopback is open to every local process, so the host
 * accepts only clients that show this launch's secret: the browser gets it in the address the host
 * prints (and trades it for a cookie); tools and tests on the same machine read it from
 * `<data dir>/headless-host.json` (mode 0600, so only the account that runs NeuroWard can), which the
 * host writes when it listens and removes when it stops. A new launch, a new secret.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

export const LAUNCH_QUERY = 'launch';
export const LAUNCH_FILE = 'headless-host.json';

export interface LaunchInfo {
  /** The address to open, secret included. */
  launchUrl: string;
  url: string;
  port: number;
  secret: string;
  /** The cookie the page holds after the first load (tools that speak HTTP/WebSocket send it). */
  cookieName: string;
  pid: number;
}

export function newLaunchSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function launchCookieName(port: number): string {
  return `nw_launch_${port}`;
}

/** Constant-time comparison of what a client offered with the secret. */
export function sameSecret(offered: string, secret: string): boolean {
  const a = Buffer.from(offered, 'utf8');
  const b = Buffer.from(secret, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function launchFilePath(dataDir: string): string {
  return path.join(dataDir, LAUNCH_FILE);
}

/** Writes the launch file readable by this account only (written aside, then renamed into place). */
export function writeLaunchFile(dataDir: string, info: LaunchInfo): string {
  const file = launchFilePath(dataDir);
  const temporary = `${file}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(info, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, file);
  return file;
}

export function readLaunchFile(dataDir: string): LaunchInfo {
  return JSON.parse(readFileSync(launchFilePath(dataDir), 'utf8')) as LaunchInfo;
}

/** Removes the file if it is still this process's (a newer launch may have replaced it). */
export function removeLaunchFile(dataDir: string): void {
  try {
    if (readLaunchFile(dataDir).pid === process.pid) rmSync(launchFilePath(dataDir), { force: true });
  } catch {
    // Already gone or unreadable: nothing to remove.
  }
}
