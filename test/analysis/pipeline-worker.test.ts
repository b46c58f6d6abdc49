/**
 * The AI read on its worker thread (analysis-client.ts → dist/workers/analysis.cjs, the bundle built
 * from analysis.worker.ts): progress arrives as messages, the result equals the in-thread run's, a
 * cancel message stops it, and bad input / a bad model come back as their own errors; this thread's
 * loop stays free meanwhile.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeOnWorker } from '../../src/main/analysis/analysis-client.js';
import { ModelFileError } from '../../src/main/analysis/model/model-files.js';
import { analyzeSeries, STAGES, type StageProgress } from '../../src/main/analysis/pipeline.js';
import { ImagingInputError } from '../../src/main/imaging/types.js';
import { workerFile } from '../../src/main/workers/locate.js';
import { savedTestModel, smallPhantom } from './pipeline-support.js';

const phantom = smallPhantom(5);
let modelDir = '';

beforeAll(async () => {
  modelDir = (await savedTestModel(4)).dir;
});

describe('analysis worker', () => {
  it('is a real bundle in dist/workers', () => {
    const file = workerFile('analysis');
    expect(file).toBe(path.resolve('dist/workers/analysis.cjs'));
    expect(existsSync(file)).toBe(true);
  });

  it('runs the read with progress messages, gives the in-thread result, and leaves this loop free', async () => {
    const events: StageProgress[] = [];
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 20);
    const started = performance.now();
    const result = await analyzeOnWorker(phantom.series, { modelDir, backend: 'wasm', fitWorkers: 1, onProgress: (p) => events.push(p) });
    const elapsed = performance.now() - started;
    clearInterval(ticker);
    expect(result.stages.map((s) => s.name)).toEqual([...STAGES]);
    expect([...new Set(events.map((e) => e.stage))]).toEqual([...STAGES]);
    expect(result.backend.name).toBe('wasm');
    // The loop ran its 20 ms timer through the read (at least half the ticks it could have).
    expect(ticks).toBeGreaterThan(elapsed / 20 / 2);
    const here = await analyzeSeries(phantom.series, { model: modelDir, backend: 'wasm', fitWorkers: 0 });
    expect(result.finding.slices).toEqual(here.finding.slices);
    expect(Array.from(result.heatMap)).toEqual(Array.from(here.heatMap));
  }, 120_000);

  it('stops on cancel', async () => {
    const controller = new AbortController();
    const events: StageProgress[] = [];
    const run = analyzeOnWorker(phantom.series, {
      modelDir,
      backend: 'wasm',
      batchSize: 1,
      onProgress: (p) => {
        events.push(p);
        if (p.stage === 'cnn' && p.fraction > 0) controller.abort(new Error('cancelled by the radiologist'));
      },
      signal: controller.signal,
    });
    await expect(run).rejects.toThrow('cancelled by the radiologist');
    const afterCancel = events.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events.length).toBe(afterCancel);
    expect(events.some((e) => e.stage === 'findings')).toBe(false);
  }, 120_000);

  it('reports bad input and a bad model as their own errors', async () => {
    const s = phantom.series;
    await expect(analyzeOnWorker({ ...s, bvals: s.bvals.map(() => 0) }, { modelDir })).rejects.toThrow(ImagingInputError);
    await expect(analyzeOnWorker(s, { modelDir: path.join(modelDir, 'nowhere') })).rejects.toThrow(ModelFileError);
  }, 60_000);
});
