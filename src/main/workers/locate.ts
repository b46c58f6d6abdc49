/**
 * Where the worker-thread entry files are at run time. Each worker is a real TypeScript module
 * (src/main/imaging/tensor/fit.worker.ts, src/main/store/checkpointer.worker.ts,
 * src/main/imaging/io.worker.ts, src/main/analysis/analysis.worker.ts), typed and linted like
 * the rest and bundled by esbuild (scripts/workers.mjs, run by scripts/build.mjs) into
 * `<app root>/dist/workers/<name>.cjs`.
 *
 * The app root is the nearest folder above the running module that holds a package.json:
 * - the bundles dist/main/*.js and dist/cli/*.js: the project (or, packaged, app.asar);
 * - the TypeScript sources under vitest (src/main/workers/locate.ts): the repository, so tests spawn the
 *   very files the app ships. vitest.config.ts's globalSetup rebuilds dist/workers from the current
 *   sources before the tests run, so a test never runs a stale worker against newer sources;
 * - the benchmarks' temporary bundles (build/bench-*): the repository as well.
 * Nothing in the environment can point this at other code.
 *
 * The bundles are CommonJS (.cjs): Electron loads a worker's CommonJS from inside app.asar, and its
 * `require` resolves the external packages (better-sqlite3-multiple-ciphers) in app.asar/node_modules.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The worker bundles; scripts/workers.mjs builds one entry per name. */
export const WORKER_NAMES = ['tensor-fit', 'wal-checkpointer', 'imaging-io', 'analysis'] as const;
export type WorkerName = (typeof WORKER_NAMES)[number];

/** The worker's bundle is not where it should be: the build (or the installation) is incomplete. */
export class WorkerFileMissingError extends Error {
  constructor(
    readonly worker: WorkerName,
    readonly file: string,
  ) {
    const packaged = file.includes(`${path.sep}app.asar${path.sep}`);
    super(
      packaged
        ? `the ${worker} worker is missing from this installation (${file}); reinstall NeuroWard`
        : `the ${worker} worker is missing: ${file} does not exist; build it with \`npm run build\``,
    );
    this.name = 'WorkerFileMissingError';
  }
}

/** The nearest folder at or above `dir` that holds a package.json, or null. */
export function appRoot(dir: string): string | null {
  for (let current = path.resolve(dir); ; ) {
    if (existsSync(path.join(current, 'package.json'))) return current;
    const parent = path.dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}

/**
 * The absolute path of the worker's bundle, for `new Worker(path)`. `from` is the module the search
 * starts at (this one; tests pass another). Throws WorkerFileMissingError when the file is not there.
 */
export function workerFile(name: WorkerName, from: string | URL = import.meta.url): string {
  const start = path.dirname(fileURLToPath(from));
  const root = appRoot(start);
  const file = path.join(root ?? start, 'dist', 'workers', `${name}.cjs`);
  if (root === null || !existsSync(file)) throw new WorkerFileMissingError(name, file);
  return file;
}
