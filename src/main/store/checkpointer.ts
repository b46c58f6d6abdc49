/**
 * WAL checkpoints on a worker thread. SQLite's automatic checkpoint runs inside the commit that
 * crosses 1000 WAL pages, on the committing thread: in this encrypted store that copies (decrypts,
 * re-encrypts) ~4 MB and stalled the main thread for 20–40 ms several times a second under ward load
 * (measured: storeBatch p99 28 ms with it, 7 ms without). Here a second connection on its own thread
 * checkpoints every `intervalMs` instead (PASSIVE: it never waits for, nor blocks, the writer), and
 * the main connection's automatic checkpoint is off while that thread is alive. If the thread fails,
 * the automatic checkpoint comes back on, so the WAL never grows without bound.
 *
 * The thread runs the real entry file checkpointer.worker.ts, bundled to
 * dist/workers/wal-checkpointer.cjs and located by src/main/workers/locate.ts. Should that file be
 * missing (an incomplete build), the store keeps SQLite's automatic checkpoint and the reason, naming
 * `npm run build`, is logged and shown in `stats.lastError`.
 */
import { Worker } from 'node:worker_threads';
import { workerFile } from '../workers/locate.js';
import type { CheckpointerWorkerData, CheckpointerWorkerMessage } from './checkpointer.worker.js';
import { keyPragmas, type Db } from './database.js';

export const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;

export interface CheckpointerOptions {
  intervalMs?: number;
  log?: (message: string) => void;
}

export class WalCheckpointer {
  private worker: Worker | null;
  private checkpoints = 0;
  private lastErrorValue: string | null = null;
  private stopped = false;

  private constructor(
    private readonly db: Db,
    worker: Worker | null,
    private readonly log: (message: string) => void,
  ) {
    this.worker = worker;
  }

  /** Starts checkpointing `file` (open in `db`) from a worker; `key` is the store's raw key. */
  static start(db: Db, file: string, key: Buffer, options: CheckpointerOptions = {}): WalCheckpointer {
    const log = options.log ?? (() => undefined);
    let worker: Worker;
    try {
      const workerData: CheckpointerWorkerData = {
        file,
        nativeBinding: process.env.NEUROWARD_SQLITE_NATIVE_BINDING ?? null,
        keyPragmas: keyPragmas(key),
        intervalMs: options.intervalMs ?? 250,
      };
      try {
        worker = new Worker(workerFile('wal-checkpointer'), { workerData });
      } finally {
        // The constructor has copied workerData for the thread (which empties its copy once keyed).
        workerData.keyPragmas.length = 0;
      }
    } catch (error) {
      // No thread (missing bundle, or worker threads unavailable): the main connection keeps checkpointing.
      const checkpointer = new WalCheckpointer(db, null, log);
      checkpointer.fallBack(`checkpoint thread not started: ${error instanceof Error ? error.message : String(error)}`);
      return checkpointer;
    }
    worker.unref();
    const checkpointer = new WalCheckpointer(db, worker, log);
    worker.on('message', (message: CheckpointerWorkerMessage) => checkpointer.onMessage(message));
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

  private onMessage(message: CheckpointerWorkerMessage): void {
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
