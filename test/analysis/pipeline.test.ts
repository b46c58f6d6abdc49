/**
 * The analysis pipeline (src/main/analysis/pipeline.ts) in this thread, on a brain phantom with an
 * untrained model saved as real files: every stage runs in order with its progress and time, the
 * outputs have the input's voxel grid, cancelling stops it between stages and inside the CNN loop, and
 * input it cannot analyse is refused with its reason.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeSeries, checkAnalysable, STAGES, type StageProgress } from '../../src/main/analysis/pipeline.js';
import { ImagingInputError, type DwiSeries } from '../../src/main/imaging/types.js';
import { buildLesionCnn } from '../../src/main/analysis/model/cnn.js';
import { ModelFileError, saveModel } from '../../src/main/analysis/model/model-files.js';
import { tempDir } from '../support/harness.js';
import { savedTestModel, smallPhantom } from './pipeline-support.js';

const phantom = smallPhantom();
const [nx, ny, nz] = phantom.series.dims;
let modelDir = '';

beforeAll(async () => {
  modelDir = (await savedTestModel()).dir;
});

describe('analyzeSeries', () => {
  it('runs every stage in order, with progress and a time each, and gives maps on the input grid', async () => {
    const events: StageProgress[] = [];
    const result = await analyzeSeries(phantom.series, { model: modelDir, backend: 'wasm', fitWorkers: 0, onProgress: (p) => events.push(p) });
    expect(result.stages.map((s) => s.name)).toEqual([...STAGES]);
    for (const s of result.stages) expect(s.ms).toBeGreaterThanOrEqual(0);
    // Each stage opens at 0 and closes at 1, fractions never go back within a stage.
    for (const name of STAGES) {
      const mine = events.filter((e) => e.stage === name).map((e) => e.fraction);
      expect(mine[0], name).toBe(0);
      expect(mine.at(-1), name).toBe(1);
      expect(mine, name).toEqual([...mine].sort((a, b) => a - b));
    }
    expect(events.filter((e) => e.stage === 'cnn').length).toBeGreaterThan(2);
    expect(result.backend.name).toBe('wasm');
    expect(result.heatMap.length).toBe(nx * ny * nz);
    expect(result.clusters.labels.length).toBe(nx * ny * nz);
    const mask = result.maps.mask;
    result.heatMap.forEach((h, v) => {
      if (!mask[v]) expect(h).toBe(0);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThanOrEqual(1);
    });
    const { finding } = result;
    expect(finding.slices.length).toBeGreaterThan(5);
    expect(finding.slices.every((s) => s.z >= 0 && s.z < nz && s.probability >= 0 && s.probability <= 1)).toBe(true);
    expect(finding.probability).toBe(Math.max(...finding.slices.map((s) => s.probability)));
    expect(finding.finding).toBe(finding.probability >= 0.5 ? 'suspected' : 'not-found');
    for (const r of finding.regions) {
      expect(r.centroidVoxel.every((c, a) => c >= 0 && c < [nx, ny, nz][a]!)).toBe(true);
      expect(r.volumeMl).toBeCloseTo((r.voxels * 64) / 1000, 9);
    }
    expect(result.model.hash).toMatch(/^[0-9a-f]{64}$/);
  }, 120_000);

  it("takes the decision threshold from the model's manifest when training recorded one", async () => {
    const dir = path.join(tempDir('nw-analysis-threshold-'), 'model');
    const cnn = buildLesionCnn({ seed: 3 });
    await saveModel(cnn, dir, { name: 'thresholded', version: '1', trainedOn: 'nothing', decisionThreshold: 0.999 });
    cnn.dispose();
    const result = await analyzeSeries(phantom.series, { model: dir, backend: 'wasm', fitWorkers: 0 });
    expect(result.finding.threshold).toBe(0.999);
    expect(result.finding.thresholdSource).toBe('model manifest');
    // Untrained weights stay near ½: under 0.999 nothing is suspected and no region is drawn.
    expect(result.finding.probability).toBeLessThan(0.999);
    expect(result.finding.finding).toBe('not-found');
    expect(result.finding.regions).toEqual([]);
  }, 120_000);

  it('stops when cancelled between stages, and inside the CNN loop', async () => {
    const early = new AbortController();
    const seen: string[] = [];
    const run = analyzeSeries(phantom.series, {
      model: modelDir,
      backend: 'wasm',
      fitWorkers: 0,
      signal: early.signal,
      onProgress: (p) => {
        seen.push(p.stage);
        if (p.stage === 'features' && p.fraction === 1) early.abort(new Error('cancelled by the test'));
      },
    });
    await expect(run).rejects.toThrow('cancelled by the test');
    expect(seen).not.toContain('pca-kmeans');

    const inCnn = new AbortController();
    const cnnEvents: number[] = [];
    const inside = analyzeSeries(phantom.series, {
      model: modelDir,
      backend: 'wasm',
      fitWorkers: 0,
      batchSize: 1,
      signal: inCnn.signal,
      onProgress: (p) => {
        if (p.stage !== 'cnn') return;
        cnnEvents.push(p.fraction);
        if (p.fraction > 0 && cnnEvents.length === 3) inCnn.abort(new Error('cancelled in the CNN'));
      },
    });
    await expect(inside).rejects.toThrow('cancelled in the CNN');
    // Stopped after the second batch of one slice: no later batch ran, the stage never closed.
    expect(cnnEvents).not.toContain(1);
    expect(cnnEvents.length).toBe(3);
  }, 120_000);

  it('refuses input it cannot analyse, with the reason', async () => {
    const s = phantom.series;
    const refused = (series: DwiSeries, reason: RegExp) => {
      expect(() => checkAnalysable(series)).toThrow(ImagingInputError);
      expect(() => checkAnalysable(series)).toThrow(reason);
    };
    refused({ ...s, dims: [8, 8, 4, s.dims[3]], data: new Float32Array(8 * 8 * 4 * s.dims[3]) }, /too small to analyse: 8 × 8 voxels in plane/);
    refused({ ...s, bvals: s.bvals.map(() => 0) }, /not a diffusion series/);
    const withNan = Float32Array.from(s.data);
    withNan[5 + 6 * nx + 7 * nx * ny + 2 * nx * ny * nz] = Number.NaN;
    refused({ ...s, data: withNan }, /1 values that are not numbers .*voxel \[5, 6, 7\] of volume 3/);
    const fewDirections = s.bvecs.map((v, i) => (s.bvals[i]! > 50 ? s.bvecs[2 + (i % 5)]! : v));
    refused({ ...s, bvecs: fewDirections }, /5 distinct diffusion directions; a diffusion tensor needs at least 6/);
    const wrong = await savedTestModel();
    await expect(analyzeSeries(s, { model: `${wrong.dir}-nowhere`, backend: 'wasm', fitWorkers: 0 })).rejects.toThrow(ModelFileError);
    // A sound model file of another design (3 input channels): refused before any fit.
    const otherDesign = path.join(tempDir('nw-analysis-other-'), 'model');
    const rgb = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [128, 128, 3], filters: 2, kernelSize: 3 }), tf.layers.globalAveragePooling2d({}), tf.layers.dense({ units: 2, activation: 'softmax' })] });
    await saveModel(rgb, otherDesign, { name: 'rgb', version: '1', trainedOn: 'nothing' });
    rgb.dispose();
    const stages: string[] = [];
    await expect(analyzeSeries(s, { model: otherDesign, backend: 'wasm', fitWorkers: 0, onProgress: (p) => stages.push(p.stage) })).rejects.toThrow(/takes inputs of \[128×128×3\], the pipeline makes 128×128×7: a model of another design/);
    expect(stages).not.toContain('fit');
  }, 60_000);
});
