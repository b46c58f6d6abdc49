/**
 * The tensor fit's workers are a real entry file: built into dist/workers, located from the running
 * module, spawned by path (no eval), checking what they are given; a failing worker rejects the fit
 * with a clear message and leaves this process working.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as WorkerThreads from 'node:worker_threads';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildTensorPlan } from '../../../src/main/imaging/tensor/design.js';
import type { FitWorkerMessage } from '../../../src/main/imaging/tensor/fit-job.js';
import { fitOnWorkers, fitTensors } from '../../../src/main/imaging/tensor/fit.js';
import type { KernelInput } from '../../../src/main/imaging/tensor/kernel.js';
import { makePhantom } from '../../../src/main/imaging/tensor/phantom.js';
import { WORKER_NAMES, WorkerFileMissingError, workerFile } from '../../../src/main/workers/locate.js';

// Every Worker the code under test creates, with its arguments (the class itself is Node's).
const spawned = vi.hoisted(() => [] as { filename: unknown; options: unknown }[]);
vi.mock('node:worker_threads', async (importOriginal) => {
  const real = await importOriginal<typeof WorkerThreads>();
  class RecordingWorker extends real.Worker {
    constructor(filename: string | URL, options?: WorkerOptions) {
      spawned.push({ filename, options });
      super(filename, options);
    }
  }
  return { ...real, Worker: RecordingWorker };
});

const ROOT = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const TENSOR_WORKER = path.join(ROOT, 'dist/workers/tensor-fit.cjs');

afterEach(() => {
  spawned.length = 0;
});

function sharedF32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * 4));
}

/** A consistent kernel input for the phantom, on shared memory. */
function kernelInput(dims: [number, number, number]): KernelInput {
  const { series } = makePhantom({ dims, b0: 1, directions: 12 });
  const nvox = dims[0] * dims[1] * dims[2];
  return {
    plan: buildTensorPlan(series.bvals, series.bvecs),
    dims,
    data: series.data,
    mask: null,
    fa: sharedF32(nvox),
    md: sharedF32(nvox),
    ad: sharedF32(nvox),
    rd: sharedF32(nvox),
    v1: sharedF32(nvox * 3),
    colourFa: sharedF32(nvox * 3),
  };
}

describe('tensor fit worker entry file', () => {
  it('is built into dist/workers from a TypeScript entry, one bundle per worker name', async () => {
    const { WORKER_ENTRIES } = (await import(pathToFileURL(path.join(ROOT, 'scripts/workers.mjs')).href)) as { WORKER_ENTRIES: Record<string, string> };
    expect(Object.keys(WORKER_ENTRIES).sort()).toEqual([...WORKER_NAMES].sort());
    for (const name of WORKER_NAMES) {
      expect(existsSync(path.join(ROOT, WORKER_ENTRIES[name]!)), WORKER_ENTRIES[name]).toBe(true);
      expect(WORKER_ENTRIES[name]).toMatch(/\.worker\.ts$/);
      expect(workerFile(name)).toBe(path.join(ROOT, 'dist/workers', `${name}.cjs`));
    }
    // The bundle holds the kernel itself: no source text evaluated at run time.
    const bundle = readFileSync(TENSOR_WORKER, 'utf8');
    expect(bundle).toContain('function fitTensorSlices(');
    expect(bundle).not.toMatch(/\beval\b|new Function|\.toString\(\)/);
  });

  it('is what fitTensors spawns, by path (no eval), one thread per requested worker', async () => {
    const { series } = makePhantom({ dims: [10, 10, 4], b0: 1, directions: 12 });
    const maps = await fitTensors(series, { mask: 'none', workers: 2 });
    expect(maps.fa.some((v) => v > 0)).toBe(true);
    expect(spawned).toHaveLength(2);
    for (const { filename, options } of spawned) {
      expect(filename).toBe(TENSOR_WORKER);
      expect((options as WorkerOptions).eval).toBeUndefined();
    }
  });

  it('rejects the fit with a clear message when a worker is given inconsistent input; this process keeps working', async () => {
    const input = kernelInput([8, 8, 3]);
    const bad = { ...input, data: input.data.subarray(64) };
    let slices = 0;
    const err = await fitOnWorkers(bad, 2, () => slices++).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^tensor fit worker failed: bad worker data: input\.data has \d+ values, expected \d+$/);
    expect(slices).toBe(0);
    // Outputs that are not shared would be filled in the worker's copy only: refused too.
    const unshared = { ...input, fa: new Float32Array(input.fa.length) };
    await expect(fitOnWorkers(unshared, 1, () => undefined)).rejects.toThrow(/input\.fa is not on a SharedArrayBuffer/);
    // Same process, same module: the next fit works.
    let done = 0;
    await fitOnWorkers(input, 2, () => done++);
    expect(done).toBe(3);
    expect(input.fa.some((v) => v > 0)).toBe(true);
  });

  it('reports bad workerData and ends with code 1 when started directly', async () => {
    const worker = new Worker(TENSOR_WORKER, { workerData: { input: null, counter: new Int32Array(1) } });
    const messages: FitWorkerMessage[] = [];
    worker.on('message', (m: FitWorkerMessage) => messages.push(m));
    const code = await new Promise<number>((resolve) => worker.on('exit', resolve));
    expect(code).toBe(1);
    expect(messages).toEqual([{ type: 'error', message: 'bad worker data: workerData.counter is not on a SharedArrayBuffer' }]);
  });

  it('refuses to run outside a worker thread', () => {
    const run = spawnSync(process.execPath, [TENSOR_WORKER], { encoding: 'utf8' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('is the entry of a worker thread');
  });
});

describe('workerFile', () => {
  it('names `npm run build` when the bundle is missing, and reinstalling inside a packaged app', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nw-locate-'));
    try {
      writeFileSync(path.join(dir, 'package.json'), '{}');
      mkdirSync(path.join(dir, 'dist', 'main'), { recursive: true });
      const from = pathToFileURL(path.join(dir, 'dist', 'main', 'headless.js'));
      const err = (() => {
        try {
          return workerFile('tensor-fit', from);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(WorkerFileMissingError);
      expect((err as Error).message).toBe(`the tensor-fit worker is missing: ${path.join(dir, 'dist/workers/tensor-fit.cjs')} does not exist; build it with \`npm run build\``);
      // Once built, the bundles (dist/main, dist/cli) find it at <root>/dist/workers.
      mkdirSync(path.join(dir, 'dist', 'workers'));
      writeFileSync(path.join(dir, 'dist', 'workers', 'tensor-fit.cjs'), '');
      expect(workerFile('tensor-fit', from)).toBe(path.join(dir, 'dist', 'workers', 'tensor-fit.cjs'));
      expect(workerFile('tensor-fit', pathToFileURL(path.join(dir, 'dist', 'cli', 'neuroward.js')))).toBe(path.join(dir, 'dist', 'workers', 'tensor-fit.cjs'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(new WorkerFileMissingError('wal-checkpointer', '/opt/NeuroWard/resources/app.asar/dist/workers/wal-checkpointer.cjs').message).toMatch(/missing from this installation .*reinstall NeuroWard/);
  });
});
