/**
 * `node scripts/evaluate.mjs [--model=DIR] [--phantoms=N] [--seed=N] [--minutes=N] [--matrix=NxN] [--slices=N] [--cache=DIR]`
 *
 * Evaluates a saved lesion CNN (default models/lesion-cnn/, loaded with its SHA-256 checked) on held-out
 * phantoms (see scripts/evaluate-run.ts for how they differ from the training ones and for the decision
 * rules; the volume threshold is the manifest's decisionThreshold), prints the table and writes
 * evaluation.json into the model's folder. Exit codes: 0 done, 1 failed, 2 bad flags.
 */
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { AcquisitionOptions } from './phantom/brain-phantom.js';
import { evaluateModel, formatReport } from './evaluate-run.js';
import { loadModel } from '../src/main/analysis/model/model-files.js';

const USAGE = 'usage: node scripts/evaluate.mjs [--model=DIR] [--phantoms=N] [--seed=N] [--minutes=N] [--matrix=NxN] [--slices=N] [--cache=DIR]';

function fail(message: string): never {
  console.error(`evaluate: ${message}\n${USAGE}`);
  process.exit(2);
}

function parse(argv: string[]) {
  const options = { model: path.resolve('models/lesion-cnn'), phantoms: 40, seed: 900_001, minutes: null as number | null, acquisition: {} as Partial<AcquisitionOptions>, cache: path.resolve('build/train-cache') };
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.+)$/.exec(arg);
    if (!match) fail(`bad argument ${arg} (flags are --name=value)`);
    const [, key, value] = match as unknown as [string, string, string];
    const integer = (min: number): number => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < min) fail(`--${key} needs an integer ≥ ${min}, got ${value}`);
      return n;
    };
    if (key === 'model') options.model = path.resolve(value);
    else if (key === 'phantoms') options.phantoms = integer(1);
    else if (key === 'seed') options.seed = integer(1);
    else if (key === 'cache') options.cache = path.resolve(value);
    else if (key === 'slices') options.acquisition.slices = integer(8);
    else if (key === 'minutes') {
      const n = Number(value);
      if (!Number.isFinite(n) || n <= 0) fail(`--minutes needs a positive number, got ${value}`);
      options.minutes = n;
    } else if (key === 'matrix') {
      const m = /^(\d+)x(\d+)$/.exec(value);
      if (!m || Number(m[1]) < 16 || Number(m[2]) < 16) fail(`--matrix needs NxN with N ≥ 16, got ${value}`);
      options.acquisition.matrix = [Number(m[1]), Number(m[2])];
    } else fail(`unknown flag --${key}`);
  }
  return options;
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  await tf.setBackend('wasm');
  await tf.ready();
  const { model, manifest } = await loadModel(options.model);
  if (manifest.decisionThreshold === undefined) console.log('evaluate: the manifest records no decisionThreshold; using 0.5 for the volume level');
  const { report } = await evaluateModel(model, {
    root: process.cwd(),
    cacheDir: options.cache,
    count: options.phantoms,
    firstSeed: options.seed,
    acquisition: options.acquisition,
    volumeThreshold: manifest.decisionThreshold ?? 0.5,
    log: (line) => console.log(line),
    deadline: options.minutes === null ? null : Date.now() + options.minutes * 60_000,
  });
  const file = path.join(options.model, 'evaluation.json');
  await writeFile(`${file}.part`, JSON.stringify({ model: { name: manifest.name, version: manifest.version, sha256: manifest.sha256 }, ...report }, null, 2) + '\n');
  await rename(`${file}.part`, file);
  console.log(formatReport(report));
}

main().catch((error: unknown) => {
  console.error(`evaluate: failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
