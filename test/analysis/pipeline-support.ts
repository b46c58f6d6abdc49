/**
 * For the pipeline, backend and CLI tests: an untrained model saved as real files in a temp folder
 * (these tests check plumbing, shapes, files and errors, never accuracy), and a small brain phantom.
 */
import path from 'node:path';

import { buildLesionCnn } from '../../src/main/analysis/model/cnn.js';
import { saveModel, type ModelManifest } from '../../src/main/analysis/model/model-files.js';
import { makeBrainPhantom, type BrainPhantom } from '../../scripts/phantom/brain-phantom.js';
import { tempDir } from '../support/harness.js';

export const TEST_MODEL = { name: 'neuroward-lesion-cnn', version: 'untrained-test', trainedOn: 'nothing (untrained weights, for plumbing tests)' };

/** Saves buildLesionCnn({ seed }) into a new temp folder; returns the folder and its manifest. */
export async function savedTestModel(seed = 3): Promise<{ dir: string; manifest: ModelManifest }> {
  const dir = path.join(tempDir('nw-analysis-model-'), 'lesion-cnn');
  const model = buildLesionCnn({ seed });
  const manifest = await saveModel(model, dir, TEST_MODEL);
  model.dispose();
  return { dir, manifest };
}

/** A 48 × 48 × 14 brain phantom with two lesions (4 mm voxels, 20 directions, SNR 30). */
export function smallPhantom(seed = 4): BrainPhantom {
  return makeBrainPhantom({ seed, acquisition: { matrix: [48, 48], slices: 14, voxelMm: [4, 4, 4], shells: [1000], directions: 20, b0Count: 2, b0First: true, snr: 30 }, lesionCount: 2 });
}

