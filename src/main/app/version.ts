/** The app's version, from the package.json of the app root (see workers/locate.ts for where that is). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appRoot } from '../workers/locate.js';

export function appVersion(from: string | URL = import.meta.url): string {
  try {
    const root = appRoot(path.dirname(fileURLToPath(from)));
    if (root === null) return '0.0.0';
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
