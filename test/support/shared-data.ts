/** The real scanner data in ../shared/data: a test that needs it fails, saying so, when it is missing. */
import { existsSync } from 'node:fs';
import path from 'node:path';

export const SHARED_DATA = path.resolve(process.cwd(), '../shared/data');

export function sharedData(...parts: string[]): string {
  const full = path.join(SHARED_DATA, ...parts);
  if (!existsSync(full)) throw new Error(`Scanner test data missing: ${full} (expected ../shared/data beside the project root).`);
  return full;
}
