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
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

export const MODEL_FILES = { topology: 'model.json', weights: 'weights.bin', manifest: 'manifest.json' } as const;

export interface ModelManifest {
  name: string;
  version: string;
  /** What the model was trained on and how (free text for the model card and the report). */
  trainedOn: string;
  createdAt: string;
  /** Volume-level decision threshold on the highest slice probability, chosen on the validation set by scripts/train.ts (absent: the reader picks one). */
  decisionThreshold?: number;
  sha256: { [MODEL_FILES.topology]: string; [MODEL_FILES.weights]: string };
}

export class ModelFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFileError';
  }
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

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

async function readRequired(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelFileError(code === 'ENOENT' ? `the AI model is missing: ${what} ${file} does not exist` : `cannot read the AI model's ${what} ${file}: ${(error as Error).message}`);
  }
}

/** Loads the model in `dir` after checking both files against the manifest's SHA-256. */
export async function loadModel(dir: string): Promise<{ model: tf.LayersModel; manifest: ModelManifest }> {
  const manifestFile = path.join(dir, MODEL_FILES.manifest);
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse((await readRequired(manifestFile, 'manifest')).toString('utf8')) as ModelManifest;
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(`the AI model's manifest ${manifestFile} is not JSON: ${(error as Error).message}`);
  }
  if (typeof manifest?.sha256?.[MODEL_FILES.topology] !== 'string' || typeof manifest.sha256[MODEL_FILES.weights] !== 'string') {
    throw new ModelFileError(`the AI model's manifest ${manifestFile} gives no SHA-256 for ${MODEL_FILES.topology} and ${MODEL_FILES.weights}`);
  }
  const topologyBytes = await readRequired(path.join(dir, MODEL_FILES.topology), 'topology');
  const weights = await readRequired(path.join(dir, MODEL_FILES.weights), 'weights');
  for (const [name, bytes] of [
    [MODEL_FILES.topology, topologyBytes],
    [MODEL_FILES.weights, weights],
  ] as const) {
    const actual = sha256(bytes);
    if (actual !== manifest.sha256[name]) throw new ModelFileError(`the AI model file ${path.join(dir, name)} is corrupt or was replaced: its SHA-256 is ${actual}, the manifest says ${manifest.sha256[name]}`);
  }
  const topology = JSON.parse(topologyBytes.toString('utf8')) as { modelTopology: tf.io.ModelArtifacts['modelTopology']; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: topology.modelTopology, weightSpecs: topology.weightsManifest.flatMap((m) => m.weights), weightData }));
  return { model, manifest };
}

/** The SHA-256 the reports carry: of the weights (what decides the outputs) and the topology together. */
export function modelHash(manifest: ModelManifest): string {
  return sha256(`${manifest.sha256[MODEL_FILES.topology]}:${manifest.sha256[MODEL_FILES.weights]}`);
}
