/**
 * The model files' identity and integrity (manifest, SHA-256), without tfjs: what model-files.ts
 * loads, and what the main process reports about the model without loading it.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appRoot } from '../../workers/locate.js';

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

/** <app root>/models/lesion-cnn: the model that ships with the app. */
export function defaultModelDir(from: string | URL = import.meta.url): string {
  const start = path.dirname(fileURLToPath(from));
  return path.join(appRoot(start) ?? start, 'models', 'lesion-cnn');
}

export const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

async function readRequired(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelFileError(code === 'ENOENT' ? `the AI model is missing: ${what} ${file} does not exist` : `cannot read the AI model's ${what} ${file}: ${(error as Error).message}`);
  }
}

/**
 * Reads the model's manifest and both files and checks them against the manifest's SHA-256, without
 * tfjs (the main process shows the model's state this way without loading it).
 */
export async function verifyModelFiles(dir: string): Promise<{ manifest: ModelManifest; topologyBytes: Buffer; weights: Buffer }> {
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
  return { manifest, topologyBytes, weights };
}

/** The SHA-256 the reports carry: of the weights (what decides the outputs) and the topology together. */
export function modelHash(manifest: ModelManifest): string {
  return sha256(`${manifest.sha256[MODEL_FILES.topology]}:${manifest.sha256[MODEL_FILES.weights]}`);
}
