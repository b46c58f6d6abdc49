/**
 * The trained model on disk (issue 9 item 4): tfjs layers format (`model.json` + `weights.bin`, what
 * `tf.loadLayersModel` reads) plus `manifest.json`, which names the model, its version and the SHA-256
 * of both files. Loading checks both hashes before anything is parsed, so a truncated download, a
 * swapped weights file or an edited topology is refused with a clear reason instead of giving wrong
 * probabilities; the rest of the app keeps working without the read.
 *
 * Written without tfjs-node (its native binary cannot be downloaded here): the save handler receives
 * the artifacts and this module writes them, each file aside and renamed into place.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { MODEL_FILES, ModelFileError, sha256, verifyModelFiles, type ModelManifest } from './model-check.js';

export { MODEL_FILES, ModelFileError, modelHash, verifyModelFiles, type ModelManifest } from './model-check.js';

async function writeWhole(file: string, data: Uint8Array | string): Promise<void> {
  await writeFile(`${file}.part`, data);
  await rename(`${file}.part`, file);
}

/** Saves `model` into `dir` as model.json + weights.bin + manifest.json; returns the manifest. */
export async function saveModel(model: tf.LayersModel, dir: string, about: Pick<ModelManifest, 'name' | 'version' | 'trainedOn' | 'decisionThreshold'>): Promise<ModelManifest> {
  await mkdir(dir, { recursive: true });
  let manifest: ModelManifest | null = null;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      if (!artifacts.weightSpecs || !artifacts.weightData) throw new ModelFileError('the model has no weights to save');
      const weightData = artifacts.weightData;
      const weights = new Uint8Array(weightData instanceof ArrayBuffer ? weightData : await new Blob(weightData).arrayBuffer());
      const topology = JSON.stringify({
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [`./${MODEL_FILES.weights}`], weights: artifacts.weightSpecs }],
      });
      await writeWhole(path.join(dir, MODEL_FILES.weights), weights);
      await writeWhole(path.join(dir, MODEL_FILES.topology), topology);
      manifest = { ...about, createdAt: new Date().toISOString(), sha256: { [MODEL_FILES.topology]: sha256(topology), [MODEL_FILES.weights]: sha256(weights) } };
      await writeWhole(path.join(dir, MODEL_FILES.manifest), JSON.stringify(manifest, null, 2) + '\n');
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
  return manifest!;
}

/** Loads the model in `dir` after checking both files against the manifest's SHA-256 (verifyModelFiles). */
export async function loadModel(dir: string): Promise<{ model: tf.LayersModel; manifest: ModelManifest }> {
  const { manifest, topologyBytes, weights } = await verifyModelFiles(dir);
  const topology = JSON.parse(topologyBytes.toString('utf8')) as { modelTopology: tf.io.ModelArtifacts['modelTopology']; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: topology.modelTopology, weightSpecs: topology.weightsManifest.flatMap((m) => m.weights), weightData }));
  return { model, manifest };
}
