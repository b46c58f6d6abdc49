/**
 * WAL checkpoints on a worker thread. SQLite's automatic checkpoint runs inside the commit that
 * crosses 1000 WAL pages, on the committing thread: in this encrypted store that copies (decrypts,
 * re-encrypts) ~4 MB and stalled the main thread for 20–40 ms several times a second under ward load
 * (measured: storeBatch p99 28 ms with it, 7 ms without). Here a second connection on its own thread
 * checkpoints every `intervalMs` instead (PASSIVE: it never waits for, nor blocks, the writer), and
 * the main connection's automatic checkpoint is off while that thread is alive. If the thread fails,
 * the automatic checkpoint comes back on, so the WAL never grows without bound.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { keyPragmas, type Db } from './database.js';

export const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;

export interface CheckpointerOptions {
  intervalMs?: number;
  log?: (message: string) => void;
}

/** Messages from the worker. */
type WorkerMessage = { type: 'ready' } | { type: 'checkpoint'; walFrames: number; checkpointed: number } | { type: 'error'; message: string };

// The worker: plain CommonJS (an eval worker has no module graph of its own); the driver's absolute
// path and the key pragmas come in workerData.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const options = workerData.nativeBinding ? { fileMustExist: true, nativeBinding: workerData.nativeBinding } : { fileMustExist: true };
let db;
try {
  db = new Database(workerData.file, options);
  for (const pragma of workerData.keyPragmas) db.pragma(pragma);
  workerData.keyPragmas.length = 0;
  db.pragma('busy_timeout = 0');
  db.prepare('SELECT count(*) FROM sqlite_master').get();
  parentPort.postMessage({ type: 'ready' });
} catch (error) {
  parentPort.postMessage({ type: 'error', message: String(error && error.message || error) });
  process.exit(1);
}
const timer = setInterval(() => {
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)');
    if (row && row.log > 0) parentPort.postMessage({ type: 'checkpoint', walFrames: row.log, checkpointed: row.checkpointed });
  } catch (error) {
    if (error && error.code === 'SQLITE_BUSY') return; // another checkpoint (the close) runs: next time
    parentPort.postMessage({ type: 'error', message: String(error && error.message || error) });
  }
}, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export class WalCheckpointer {
  private worker: Worker | null;
  private checkpoints = 0;
  private lastErrorValue: string | null = null;
  private stopped = false;

  private constructor(
    private readonly db: Db,
    worker: Worker,
    private readonly log: (message: string) => void,
  ) {
    this.worker = worker;
  }

  /** Starts checkpointing `file` (open in `db`) from a worker; `key` is the store's raw key. */
  static start(db: Db, file: string, key: Buffer, options: CheckpointerOptions = {}): WalCheckpointer {
    const log = options.log ?? (() => undefined);
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        file,
        driver: createRequire(import.meta.url).resolve('better-sqlite3-multiple-ciphers'),
        nativeBinding: process.env.NEUROWARD_SQLITE_NATIVE_BINDING ?? null,
        keyPragmas: keyPragmas(key),
        intervalMs: options.intervalMs ?? 250,
      },
    });
    worker.unref();
    const checkpointer = new WalCheckpointer(db, worker, log);
    worker.on('message', (message: WorkerMessage) => checkpointer.onMessage(message));
    worker.on('error', (error) => checkpointer.fallBack(`checkpoint thread failed: ${error.message}`));
    worker.on('exit', (code) => {
      if (!checkpointer.stopped) checkpointer.fallBack(`checkpoint thread exited (code ${code})`);
    });
    return checkpointer;
  }

  get stats(): { checkpoints: number; lastError: string | null; onWorker: boolean } {
    return { checkpoints: this.checkpoints, lastError: this.lastErrorValue, onWorker: this.worker !== null };
  }

  /** Stops the thread; the main connection checkpoints by itself again (and at its close). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.worker?.postMessage('stop');
    this.worker = null;
    this.restoreAutocheckpoint();
  }

  private onMessage(message: WorkerMessage): void {
    if (message.type === 'ready') {
      if (!this.stopped && this.db.open) this.db.pragma('wal_autocheckpoint = 0');
    } else if (message.type === 'checkpoint') {
      this.checkpoints += 1;
    } else {
      this.lastErrorValue = message.message;
      this.log(`store: WAL checkpoint failed: ${message.message}`);
    }
  }

  private fallBack(reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.lastErrorValue = reason;
    this.log(`store: ${reason}; checkpointing on the main thread again`);
    void this.worker?.terminate();
    this.worker = null;
    this.restoreAutocheckpoint();
  }

  private restoreAutocheckpoint(): void {
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
  }
}
