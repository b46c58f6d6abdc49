/**
 * The model files (src/main/analysis/model/model-files.ts): a saved model loads back giving the same
 * outputs, and every way the files can be wrong is refused with its reason before anything is parsed.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildLesionCnn } from '../../src/main/analysis/model/cnn.js';
import { loadModel, MODEL_FILES, ModelFileError, modelHash, saveModel } from '../../src/main/analysis/model/model-files.js';
import { INPUT_CHANNELS, INPUT_SIZE } from '../../src/main/analysis/slices.js';
import { mulberry32 } from '../../src/shared/random.js';
import { tempDir } from '../support/harness.js';

beforeAll(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

const about = { name: 'neuroward-lesion-cnn', version: 'test', trainedOn: 'nothing (untrained, for the test)' };

async function savedModel(): Promise<{ dir: string; outputs: Float32Array; input: tf.Tensor4D }> {
  const dir = path.join(tempDir('nw-model-'), 'model');
  const model = buildLesionCnn({ seed: 5 });
  const random = mulberry32(2);
  const input = tf.tensor4d(Float32Array.from({ length: 2 * INPUT_SIZE * INPUT_SIZE * INPUT_CHANNELS.length }, () => random()), [2, INPUT_SIZE, INPUT_SIZE, INPUT_CHANNELS.length]);
  const outputs = (model.predict(input) as tf.Tensor).dataSync() as Float32Array;
  await saveModel(model, dir, about);
  model.dispose();
  return { dir, outputs, input };
}

describe('model files', () => {
  it('load back to the same outputs, with the manifest and a stable hash', async () => {
    const { dir, outputs, input } = await savedModel();
    const { model, manifest } = await loadModel(dir);
    expect(manifest.name).toBe(about.name);
    expect(manifest.sha256[MODEL_FILES.weights]).toMatch(/^[0-9a-f]{64}$/);
    expect(modelHash(manifest)).toMatch(/^[0-9a-f]{64}$/);
    const again = (model.predict(input) as tf.Tensor).dataSync();
    expect(Array.from(again)).toEqual(Array.from(outputs));
    model.dispose();
    input.dispose();
  });

  it('refuse a missing, corrupt or replaced file, and a broken manifest, naming the file', async () => {
    const { dir, input } = await savedModel();
    input.dispose();
    const weights = path.join(dir, MODEL_FILES.weights);
    const original = readFileSync(weights);
    const flipped = Buffer.from(original);
    flipped[100] = flipped[100]! ^ 0x01;
    writeFileSync(weights, flipped);
    await expect(loadModel(dir)).rejects.toThrow(ModelFileError);
    await expect(loadModel(dir)).rejects.toThrow(/weights\.bin is corrupt or was replaced: its SHA-256 is [0-9a-f]{64}, the manifest says/);
    writeFileSync(weights, original);
    const topology = path.join(dir, MODEL_FILES.topology);
    writeFileSync(topology, readFileSync(topology, 'utf8').replace('"relu"', '"linear"'));
    await expect(loadModel(dir)).rejects.toThrow(/model\.json is corrupt or was replaced/);
    rmSync(topology);
    await expect(loadModel(dir)).rejects.toThrow(/the AI model is missing: topology .*model\.json does not exist/);
    writeFileSync(path.join(dir, MODEL_FILES.manifest), '{ not json');
    await expect(loadModel(dir)).rejects.toThrow(/manifest .* is not JSON/);
    writeFileSync(path.join(dir, MODEL_FILES.manifest), '{}');
    await expect(loadModel(dir)).rejects.toThrow(/gives no SHA-256/);
    await expect(loadModel(path.join(dir, 'nowhere'))).rejects.toThrow(/the AI model is missing: manifest/);
  });
});
