/**
 * Worker-thread entry of the WAL checkpointer (checkpointer.ts), bundled to
 * dist/workers/wal-checkpointer.cjs (scripts/workers.mjs; located by src/main/workers/locate.ts). It
 * opens a second connection on the store, keys it with the pragmas from workerData (then empties that
 * array, so the key does not stay in this thread's copy of workerData), and runs a PASSIVE checkpoint
 * every `intervalMs` until the parent sends 'stop'. The SQLCipher driver is an external package,
 * resolved from this bundle at run time; `nativeBinding` is the Electron-ABI addon when the main
 * connection uses one (database.ts).
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface CheckpointerWorkerData {
  file: string;
  nativeBinding: string | null;
  keyPragmas: string[];
  intervalMs: number;
}

/** Messages to the parent. */
export type CheckpointerWorkerMessage =
  | { type: 'ready' }
  | { type: 'checkpoint'; walFrames: number; checkpointed: number }
  | { type: 'error'; message: string };

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function checkWorkerData(value: unknown): CheckpointerWorkerData {
  const data = (typeof value === 'object' && value !== null ? value : {}) as Partial<Record<keyof CheckpointerWorkerData, unknown>>;
  const problems: string[] = [];
  if (typeof data.file !== 'string' || data.file === '') problems.push('file');
  if (data.nativeBinding !== null && typeof data.nativeBinding !== 'string') problems.push('nativeBinding');
  if (!Array.isArray(data.keyPragmas) || !data.keyPragmas.every((p) => typeof p === 'string')) problems.push('keyPragmas');
  if (typeof data.intervalMs !== 'number' || !(data.intervalMs > 0)) problems.push('intervalMs');
  if (problems.length) throw new Error(`bad worker data: ${problems.join(', ')} missing or invalid`);
  return data as CheckpointerWorkerData;
}

if (isMainThread || !parentPort) throw new Error('checkpointer.worker.ts is the entry of a worker thread: start it with new Worker(), see checkpointer.ts');
const port = parentPort;
const post = (message: CheckpointerWorkerMessage) => port.postMessage(message);

/** The keyed connection, or (having said why) the end of this thread. */
function open(): { db: Database.Database; intervalMs: number } {
  let db: Database.Database | undefined;
  try {
    const data = checkWorkerData(workerData);
    const options: Database.Options = data.nativeBinding ? { fileMustExist: true, nativeBinding: data.nativeBinding } : { fileMustExist: true };
    try {
      db = new Database(data.file, options);
      for (const pragma of data.keyPragmas) db.pragma(pragma);
    } finally {
      data.keyPragmas.length = 0;
    }
    db.pragma('busy_timeout = 0');
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return { db, intervalMs: data.intervalMs };
  } catch (error) {
    db?.close();
    post({ type: 'error', message: errorMessage(error) });
    process.exit(1);
  }
}

const { db, intervalMs } = open();
post({ type: 'ready' });
const timer = setInterval(() => {
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    if (row && row.log > 0) post({ type: 'checkpoint', walFrames: row.log, checkpointed: row.checkpointed });
  } catch (error) {
    // Another checkpoint (the main connection's close) is running: next time.
    if (typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'SQLITE_BUSY') return;
    post({ type: 'error', message: errorMessage(error) });
  }
}, intervalMs);
port.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  port.close();
});
