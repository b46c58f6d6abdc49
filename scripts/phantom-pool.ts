/**
 * Makes the slice data of many phantoms on every core: worker threads run generator + pipeline
 * (phantomSlicesOrSkip, scripts/evaluate-dataset.ts) and write the slice cache; the caller then reads
 * each phantom from the cache, in its own order. One phantom costs ~20 s of one core and the fit of a
 * phantom runs on one thread (workers: 0), so on 2 cores this halves the data part of `npm run train`.
 *
 * The workers run the very bundle that holds this file (`npm run train` is one esbuild bundle): its entry
 * calls `runPhantomWorkerIfAny()` first and does nothing else on a worker thread.
 */
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { phantomSlices, phantomSlicesOrSkip, type MadePhantom, type PhantomSource, type PhantomSlices, type PhantomSpec } from './evaluate-dataset.js';

interface WorkerInit {
  neurowardPhantomWorker: true;
  root: string;
  cacheDir: string;
}
type Reply = { seed: number; skipped: string | null; cached: boolean } | { seed: number; error: string };

/** On a phantom worker thread: serve requests until the pool ends it, and return true. Else false. */
export function runPhantomWorkerIfAny(): boolean {
  const init = workerData as Partial<WorkerInit> | null;
  if (isMainThread || !parentPort || !init?.neurowardPhantomWorker) return false;
  const port = parentPort;
  port.on('message', (spec: PhantomSpec) => {
    let skipped: string | null = null;
    phantomSlicesOrSkip(init.root!, init.cacheDir!, spec, (line) => (skipped = line))
      .then((made) => port.postMessage({ seed: spec.seed, skipped, cached: made?.cached ?? false } satisfies Reply))
      .catch((error: unknown) => port.postMessage({ seed: spec.seed, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies Reply));
  });
  return true;
}

export class PhantomPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting: { spec: PhantomSpec; resolve: (reply: Reply) => void }[] = [];
  private readonly pending = new Map<Worker, (reply: Reply) => void>();

  /** `entry`: the running bundle's file URL (import.meta.url of the entry). */
  constructor(entry: URL, root: string, cacheDir: string, jobs = availableParallelism()) {
    for (let i = 0; i < Math.max(1, jobs); i++) {
      const worker = new Worker(entry, { workerData: { neurowardPhantomWorker: true, root, cacheDir } satisfies WorkerInit });
      worker.on('message', (reply: Reply) => {
        const resolve = this.pending.get(worker);
        this.pending.delete(worker);
        this.idle.push(worker);
        this.next();
        resolve?.(reply);
      });
      worker.on('error', (error) => {
        const resolve = this.pending.get(worker);
        this.pending.delete(worker);
        resolve?.({ seed: -1, error: error.stack ?? error.message });
      });
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  private next(): void {
    while (this.idle.length && this.waiting.length) {
      const worker = this.idle.shift()!;
      const { spec, resolve } = this.waiting.shift()!;
      this.pending.set(worker, resolve);
      worker.postMessage(spec);
    }
  }

  /** Puts the phantom in the cache (`skipped`: why the pipeline refuses it; `cached`: it was there already). */
  private prepare(spec: PhantomSpec): Promise<{ skipped: string | null; cached: boolean }> {
    return new Promise<Reply>((resolve) => {
      this.waiting.push({ spec, resolve });
      this.next();
    }).then((reply) => {
      if ('error' in reply) throw new Error(`phantom seed ${spec.seed}: ${reply.error}`);
      return reply;
    });
  }

  /**
   * The phantoms of `specs` in their order, read back from the cache with `read` (`skipped`: the reason
   * the pipeline refuses one, already worded as phantomSlicesOrSkip logs it), while the next ones are made
   * on the other workers. No phantom is started once `stop()` is true; the sequence then ends with those
   * already started. `seconds`: from the start of its making to its read.
   */
  async *slices(specs: readonly PhantomSpec[], read: (spec: PhantomSpec) => Promise<PhantomSlices>, stop: () => boolean = () => false): AsyncGenerator<MadePhantom> {
    const started: { spec: PhantomSpec; ready: Promise<{ skipped: string | null; cached: boolean }>; since: number }[] = [];
    let nextIndex = 0;
    // One more than the workers in flight, so a worker never waits for the reader.
    const fill = () => {
      while (nextIndex < specs.length && started.length <= this.workers.length && !stop()) {
        const spec = specs[nextIndex++]!;
        started.push({ spec, ready: this.prepare(spec), since: performance.now() });
      }
    };
    fill();
    while (started.length) {
      const { spec, ready, since } = started.shift()!;
      const { skipped, cached } = await ready;
      fill();
      const slices = skipped === null ? await read(spec) : null;
      yield { spec, slices, skipped, cached, seconds: (performance.now() - since) / 1000 };
    }
  }

  /**
   * Makes the phantoms of `specs` into the cache on at most `lanes` workers at a time, in the background
   * (e.g. the evaluation's while this thread trains); a later request for one finds it cached.
   */
  prefill(specs: readonly PhantomSpec[], lanes: number): void {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < specs.length) await this.prepare(specs[next++]!);
    };
    for (let i = 0; i < Math.max(1, lanes); i++) lane().catch(() => undefined); // a failure shows again when the phantom is asked for
  }

  /** This pool as a PhantomSource reading the cache the workers fill. */
  source(root: string, cacheDir: string): PhantomSource {
    return (specs, stop) => this.slices(specs, async (spec) => (await phantomSlices(root, cacheDir, spec)).slices, stop);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
