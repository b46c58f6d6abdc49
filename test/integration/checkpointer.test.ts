/** WAL checkpoints from a worker thread on the real encrypted store, and the fallback when that thread cannot work. */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type * as WorkerThreads from 'node:worker_threads';
import type { WorkerOptions } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_AUTOCHECKPOINT_PAGES, WalCheckpointer } from '../../src/main/store/checkpointer.js';
import { openEncryptedDatabase } from '../../src/main/store/database.js';
import type * as Locate from '../../src/main/workers/locate.js';
import { tempDir } from '../support/harness.js';
import { waitFor } from '../support/mosquitto.js';

// Every Worker the checkpointer creates, with its arguments (the class itself is Node's); and a switch
// that makes the worker's bundle look missing.
const seen = vi.hoisted(() => ({ spawned: [] as { filename: unknown; options: WorkerOptions | undefined }[], bundleMissing: false }));
vi.mock('node:worker_threads', async (importOriginal) => {
  const real = await importOriginal<typeof WorkerThreads>();
  class RecordingWorker extends real.Worker {
    constructor(filename: string | URL, options?: WorkerOptions) {
      seen.spawned.push({ filename, options });
      super(filename, options);
    }
  }
  return { ...real, Worker: RecordingWorker };
});
vi.mock('../../src/main/workers/locate.js', async (importOriginal) => {
  const real = await importOriginal<typeof Locate>();
  return {
    ...real,
    workerFile: (name: Parameters<typeof real.workerFile>[0]) => {
      if (seen.bundleMissing) throw new real.WorkerFileMissingError(name, `/nowhere/dist/workers/${name}.cjs`);
      return real.workerFile(name);
    },
  };
});

afterEach(() => {
  seen.spawned.length = 0;
  seen.bundleMissing = false;
});

const WORKER_BUNDLE = path.resolve('dist/workers/wal-checkpointer.cjs');

function openStore() {
  const dir = tempDir('nw-ckpt-');
  const file = path.join(dir, 'neuroward.db');
  const key = randomBytes(32);
  const db = openEncryptedDatabase(file, key, { create: true });
  db.exec('CREATE TABLE filler (id INTEGER PRIMARY KEY, blob BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO filler (blob) VALUES (?)');
  /** About `pages` 4 KiB pages into the WAL, in transactions of 50. */
  const write = (pages: number) => {
    for (let i = 0; i < pages; i += 50) db.transaction(() => {
      for (let j = 0; j < 50; j++) insert.run(randomBytes(3000));
    })();
  };
  return { dir, file, key, db, write, cleanup: () => { db.close(); rmSync(dir, { recursive: true, force: true }); } };
}

const autocheckpoint = (db: ReturnType<typeof openStore>['db']) => db.pragma('wal_autocheckpoint', { simple: true });

describe('WAL checkpoints on a worker thread', () => {
  it('takes over from the automatic checkpoint and keeps the WAL from growing', async () => {
    const store = openStore();
    const log: string[] = [];
    const checkpointer = WalCheckpointer.start(store.db, store.file, store.key, { intervalMs: 50, log: (m) => log.push(m) });
    try {
      await waitFor(() => autocheckpoint(store.db) === 0, 10_000, 'the main connection to hand over its checkpoints');
      store.write(3000); // three times the automatic threshold
      await waitFor(() => checkpointer.stats.checkpoints > 0, 10_000, 'a checkpoint from the worker');
      // The main connection does not checkpoint (0 above), yet the rows reach the database file (one
      // 3000-byte row per 4 KiB page): the worker copied them there.
      await waitFor(() => statSync(store.file).size >= 3000 * 4096, 20_000, 'the database file to hold the rows', () => ({ db: statSync(store.file).size, ...checkpointer.stats }));
      expect(autocheckpoint(store.db)).toBe(0);
      expect(store.db.prepare('SELECT count(*) AS n FROM filler').get()).toEqual({ n: 3000 });
      expect(checkpointer.stats).toMatchObject({ onWorker: true, lastError: null });
      expect(log).toEqual([]);
      // The thread is the real entry file (checkpointer.worker.ts bundled), not evaluated source text.
      expect(seen.spawned).toHaveLength(1);
      expect(seen.spawned[0]!.filename).toBe(WORKER_BUNDLE);
      expect(seen.spawned[0]!.options?.eval).toBeUndefined();
      expect(readFileSync(WORKER_BUNDLE, 'utf8')).toMatch(/require\("better-sqlite3-multiple-ciphers"\)/);
      // The key went to the worker as pragmas in workerData (it keyed its connection: autocheckpoint 0
      // above); this thread's array of them is emptied once the worker has its copy.
      expect((seen.spawned[0]!.options?.workerData as { keyPragmas: string[] }).keyPragmas).toEqual([]);
    } finally {
      checkpointer.stop();
      expect(autocheckpoint(store.db)).toBe(DEFAULT_AUTOCHECKPOINT_PAGES); // back to SQLite's own after stop
      store.cleanup();
    }
  });

  it('falls back to the automatic checkpoint, saying why, when the worker cannot open the store', async () => {
    const store = openStore();
    const log: string[] = [];
    const checkpointer = WalCheckpointer.start(store.db, store.file, randomBytes(32), { intervalMs: 50, log: (m) => log.push(m) });
    try {
      await waitFor(() => !checkpointer.stats.onWorker, 10_000, 'the fallback');
      expect(checkpointer.stats.lastError).toMatch(/exited|not a database|file is not a database/i);
      expect(log.join('\n')).toMatch(/checkpointing on the main thread again/);
      expect(autocheckpoint(store.db)).toBe(DEFAULT_AUTOCHECKPOINT_PAGES);
      store.write(100); // the store still works
      expect(store.db.prepare('SELECT count(*) AS n FROM filler').get()).toEqual({ n: 100 });
    } finally {
      checkpointer.stop();
      store.cleanup();
    }
  });

  it('keeps the automatic checkpoint, naming `npm run build`, when the worker bundle is missing', () => {
    const store = openStore();
    const log: string[] = [];
    seen.bundleMissing = true;
    const checkpointer = WalCheckpointer.start(store.db, store.file, store.key, { intervalMs: 50, log: (m) => log.push(m) });
    try {
      expect(seen.spawned).toEqual([]);
      expect(checkpointer.stats.onWorker).toBe(false);
      expect(checkpointer.stats.lastError).toMatch(/^checkpoint thread not started: the wal-checkpointer worker is missing: .* build it with `npm run build`$/);
      expect(log.join('\n')).toMatch(/npm run build.*checkpointing on the main thread again/);
      expect(autocheckpoint(store.db)).toBe(DEFAULT_AUTOCHECKPOINT_PAGES);
      store.write(100);
      expect(store.db.prepare('SELECT count(*) AS n FROM filler').get()).toEqual({ n: 100 });
    } finally {
      checkpointer.stop();
      store.cleanup();
    }
  });
});
