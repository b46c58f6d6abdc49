/**
 * `npm run train` (scripts/train.ts) end to end on a tiny budget: real phantoms (small matrix), the real
 * pipeline, real training on wasm, saved with saveModel and loaded back with loadModel. Checks that the
 * files are valid, that the same seed gives the same slice labels and the same first-batch loss (the
 * second run reads the slice cache the first one wrote, so this also proves the cache returns what was
 * computed), that bad flags exit 2 with a clear message, and that an unwritable output exits 1 without
 * touching what is there.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { loadModel } from '../../src/main/analysis/model/model-files.js';

const root = path.resolve(import.meta.dirname, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'neuroward-train-'));
const cache = path.join(work, 'cache');
const TINY = ['--minutes=3', '--phantoms=2', '--val-phantoms=1', '--eval-phantoms=0', '--epochs=1', '--matrix=36x36', '--slices=12', '--seed=3', `--cache=${cache}`];

function train(args: string[]) {
  const run = spawnSync(process.execPath, ['scripts/train.mjs', ...args], { cwd: root, encoding: 'utf8', timeout: 150_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

interface TrainingLog {
  firstBatchLoss: number;
  sliceLabels: { seed: number; labels: number[] }[];
  epochs: { epoch: number; trainLoss: number }[];
  volumeThreshold: number;
}
const readLog = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'training.json'), 'utf8')) as TrainingLog;

let first: ReturnType<typeof train>;
let second: ReturnType<typeof train>;
beforeAll(async () => {
  await tf.setBackend('wasm');
  first = train([...TINY, `--out=${path.join(work, 'a')}`]);
  second = train([...TINY, `--out=${path.join(work, 'b')}`]);
}, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm run train on a tiny budget', () => {
  it('writes a model that loadModel accepts, with its threshold in the manifest', async () => {
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/epoch 1: train loss \d+\.\d+ acc/);
    expect(first.stdout).toMatch(/data ready in \d+\.\d s/);
    const dir = path.join(work, 'a');
    expect(readdirSync(dir).sort()).toEqual(['manifest.json', 'model.json', 'training.json', 'weights.bin']);
    const { model, manifest } = await loadModel(dir);
    expect(manifest.name).toBe('neuroward-lesion-cnn');
    expect(manifest.trainedOn).toMatch(/synthetic/);
    expect(manifest.decisionThreshold).toBeGreaterThanOrEqual(0);
    expect(manifest.decisionThreshold).toBeLessThanOrEqual(1);
    // The saved network reads a 128 × 128 × 7 slice into two probabilities that sum to 1.
    const out = tf.tidy(() => (model.predict(tf.zeros([1, 128, 128, 7])) as tf.Tensor).arraySync() as number[][]);
    expect(out[0]).toHaveLength(2);
    expect(out[0]![0]! + out[0]![1]!).toBeCloseTo(1, 5);
  });

  it('is reproducible: the same seed gives the same slice labels and first-batch loss (the rerun from the cache)', () => {
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/\(cached\)/);
    expect(first.stdout).not.toMatch(/\(cached\)/);
    const a = readLog(path.join(work, 'a'));
    const b = readLog(path.join(work, 'b'));
    expect(a.sliceLabels.map((s) => s.seed)).toEqual([3, 4]);
    expect(a.sliceLabels.every((s) => s.labels.length > 0 && s.labels.every((l) => l === -1 || l === 0 || l === 1))).toBe(true);
    expect(b.sliceLabels).toEqual(a.sliceLabels);
    expect(Number.isFinite(a.firstBatchLoss)).toBe(true);
    expect(b.firstBatchLoss).toBe(a.firstBatchLoss);
    expect(readFileSync(path.join(work, 'b', 'weights.bin')).equals(readFileSync(path.join(work, 'a', 'weights.bin')))).toBe(true);
  });

  it('refuses bad flags with exit code 2 and says why', () => {
    for (const [args, message] of [
      [['--minutes=soon'], /--minutes needs a number/],
      [['--phantoms=0'], /--phantoms needs an integer ≥ 1/],
      [['--filters=8,16'], /--filters needs three integers/],
      [['--learning-rate=1'], /unknown flag --learning-rate/],
      [['--seed'], /bad argument --seed/],
    ] as const) {
      const run = train([...args]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toMatch(/usage: npm run train/);
    }
  });

  it('fails with exit code 1 and a clear error when the output cannot be written, leaving the file there as it was', () => {
    const blocker = path.join(work, 'not-a-folder');
    writeFileSync(blocker, 'keep me');
    const run = train([...TINY, `--out=${path.join(blocker, 'model')}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/train: failed: .*(ENOTDIR|EEXIST)/);
    expect(readFileSync(blocker, 'utf8')).toBe('keep me');
    expect(existsSync(path.join(blocker, 'model'))).toBe(false);
  });
});
