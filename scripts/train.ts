/**
 * `npm run train -- [--minutes=N] [--phantoms=N] [--out=DIR] [--seed=N] [--epochs=N] [--filters=A,B,C]
 *  [--pooling=max|average] [--val-phantoms=N] [--eval-phantoms=N] [--eval-minutes=N] [--matrix=NxN]
 *  [--slices=N] [--cache=DIR] [--jobs=N] [--data-share=F]`
 *
 * Trains the slice lesion CNN (src/main/analysis/model/cnn.ts) on brain DTI phantoms and saves it with
 * saveModel (default models/lesion-cnn/), then evaluates it on held-out phantoms (scripts/evaluate-run.ts)
 * and writes evaluation.json and training.json beside it.
 *
 * Data: training phantoms have seeds seed, seed + 1, … with the generator's full variety of anatomy,
 * acquisitions (matrix, slices, voxel size, shells, directions, b0s), SNR 5–60 and lesions; validation
 * phantoms seeds 500 000 + seed, …, same settings. Each runs through the app's own pipeline and is cached
 * (scripts/evaluate-dataset.ts, which also defines the slice labels). Phantoms are made on --jobs worker
 * threads (default: one per core; scripts/phantom-pool.ts), training runs on this thread.
 *
 * Budget: --minutes is a hard wall-clock limit for data + training (evaluation comes after, bounded by
 * --eval-minutes). Validation phantoms are made first; training phantoms until --phantoms or --data-share (default 50 %) of the
 * budget; then epochs until --epochs or the budget (an epoch that would not fit is not started; one
 * overrunning it is stopped and dropped, unless it is the first).
 *
 * Classes are balanced by sampling: every epoch uses every lesion slice and as many lesion-free slices,
 * drawn afresh (seeded) from a pool of up to max(6, 2 × lesion slices) per phantom, each slice turned by
 * one of the 8 flips and quarter turns of the square, drawn afresh (no anatomy or acquisition has a
 * preferred in-plane orientation the model should rely on; it makes 8× the distinct inputs). Adam (lr 1e-3),
 * batches of 16, categorical cross-entropy on the two-class softmax. The epoch kept is the one with the
 * lowest class-balanced validation loss (mean of the lesion and lesion-free slices' mean losses).
 * Filters default to 8/16/32: one training step on 16 slices costs ~0.6 s CPU on wasm there, so an
 * epoch over a few hundred slices fits the one-hour budget on 2 cores many times over; 16/32/64 costs
 * about 3× more per step.
 *
 * Exit codes: 0 done, 1 failed (nothing half-written: the model files are renamed into place), 2 bad flags.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { AcquisitionOptions } from './phantom/brain-phantom.js';
import { seededRandom, serialPhantomSource, shuffle, SLICE_VALUES, type MadePhantom, type PhantomSlices, type PhantomSpec } from './evaluate-dataset.js';
import { bestF1Threshold, rocAuc, type Scored } from './evaluate-metrics.js';
import { evaluateModel, evaluationSpecs, formatReport, predictSlices } from './evaluate-run.js';
import { PhantomPool, runPhantomWorkerIfAny } from './phantom-pool.js';
import { buildLesionCnn, type LesionCnnOptions } from '../src/main/analysis/model/cnn.js';
import { saveModel } from '../src/main/analysis/model/model-files.js';
import { registerWasmConv2DBackpropFilter } from '../src/main/analysis/model/wasm-conv2d-grad.js';
import { INPUT_CHANNELS, INPUT_SIZE } from '../src/main/analysis/slices.js';

const USAGE =
  'usage: npm run train -- [--minutes=N] [--phantoms=N] [--out=DIR] [--seed=N] [--epochs=N] [--filters=A,B,C] [--pooling=max|average] [--val-phantoms=N] [--eval-phantoms=N] [--eval-minutes=N] [--matrix=NxN] [--slices=N] [--cache=DIR] [--jobs=N] [--data-share=F]';
const BATCH = 16;
const LEARNING_RATE = 1e-3;
export const VALIDATION_SEED_OFFSET = 500_000;
export const EVALUATION_FIRST_SEED = 900_001;

interface TrainOptions {
  minutes: number;
  phantoms: number;
  out: string;
  seed: number;
  epochs: number;
  filters: [number, number, number];
  pooling: NonNullable<LesionCnnOptions['pooling']>;
  valPhantoms: number;
  evalPhantoms: number;
  evalMinutes: number | null;
  acquisition: Partial<AcquisitionOptions>;
  cache: string;
  jobs: number;
  /** Share of --minutes that making training phantoms may take (the rest is for epochs). */
  dataShare: number;
}

function fail(message: string): never {
  console.error(`train: ${message}\n${USAGE}`);
  process.exit(2);
}

function parse(argv: string[]): TrainOptions {
  const options: TrainOptions = { minutes: 55, phantoms: 400, out: path.resolve('models/lesion-cnn'), seed: 1, epochs: 40, filters: [8, 16, 32], pooling: 'max', valPhantoms: 0, evalPhantoms: 40, evalMinutes: null, acquisition: {}, cache: path.resolve('build/train-cache'), jobs: availableParallelism(), dataShare: 0.5 };
  let valGiven = false;
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.+)$/.exec(arg);
    if (!match) fail(`bad argument ${arg} (flags are --name=value)`);
    const [, key, value] = match as unknown as [string, string, string];
    const number = (min: number, integer = true): number => {
      const n = Number(value);
      if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) fail(`--${key} needs ${integer ? 'an integer' : 'a number'} ≥ ${min}, got ${value}`);
      return n;
    };
    if (key === 'minutes') options.minutes = number(0.05, false);
    else if (key === 'phantoms') options.phantoms = number(1);
    else if (key === 'out') options.out = path.resolve(value);
    else if (key === 'seed') {
      options.seed = number(1);
      if (options.seed >= VALIDATION_SEED_OFFSET - 100_000) fail(`--seed must be below ${VALIDATION_SEED_OFFSET - 100_000} (higher seeds are the validation and evaluation phantoms)`);
    } else if (key === 'epochs') options.epochs = number(1);
    else if (key === 'val-phantoms') [options.valPhantoms, valGiven] = [number(1), true];
    else if (key === 'eval-phantoms') options.evalPhantoms = number(0);
    else if (key === 'eval-minutes') options.evalMinutes = number(0.05, false);
    else if (key === 'cache') options.cache = path.resolve(value);
    else if (key === 'jobs') options.jobs = number(1);
    else if (key === 'data-share') {
      options.dataShare = number(0.05, false);
      if (options.dataShare > 0.95) fail(`--data-share is a share of the budget, 0.05–0.95, got ${value}`);
    }
    else if (key === 'pooling') {
      if (value !== 'max' && value !== 'average') fail(`--pooling is max or average, got ${value}`);
      options.pooling = value;
    }
    else if (key === 'slices') options.acquisition.slices = number(8);
    else if (key === 'filters') {
      const parts = value.split(',').map(Number);
      if (parts.length !== 3 || !parts.every((n) => Number.isInteger(n) && n >= 1 && n <= 256)) fail(`--filters needs three integers 1–256 like 8,16,32, got ${value}`);
      options.filters = parts as [number, number, number];
    } else if (key === 'matrix') {
      const m = /^(\d+)x(\d+)$/.exec(value);
      if (!m || Number(m[1]) < 16 || Number(m[2]) < 16) fail(`--matrix needs NxN with N ≥ 16, got ${value}`);
      options.acquisition.matrix = [Number(m[1]), Number(m[2])];
    } else fail(`unknown flag --${key}`);
  }
  if (!valGiven) options.valPhantoms = Math.max(2, Math.min(16, Math.round(options.phantoms / 6)));
  return options;
}

interface TrainingSlice {
  input: Float32Array;
  label: 0 | 1;
}

interface EpochLog {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  slices: number;
  valLoss: number;
  valBalancedLoss: number;
  valAccuracy: number;
  valAuc: number | null;
  seconds: number;
}

const now = () => performance.now();
const seconds = (from: number) => (now() - from) / 1000;

/**
 * One of the 8 symmetries of the square (bit 0: flip x, bit 1: flip y, bit 2: swap x and y) applied to an
 * NHWC slice, written into `out` at `offset`.
 */
export function turnSlice(input: Float32Array, symmetry: number, out: Float32Array, offset: number): void {
  const n = INPUT_SIZE;
  const c = INPUT_CHANNELS.length;
  const [flipX, flipY, swap] = [symmetry & 1, symmetry & 2, symmetry & 4];
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let [sx, sy] = swap ? [y, x] : [x, y];
      if (flipX) sx = n - 1 - sx;
      if (flipY) sy = n - 1 - sy;
      const from = (sy * n + sx) * c;
      const to = offset + (y * n + x) * c;
      for (let k = 0; k < c; k++) out[to + k] = input[from + k]!;
    }
  }
}

function batchTensors(items: readonly TrainingSlice[], random: () => number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const data = new Float32Array(items.length * SLICE_VALUES);
  items.forEach((item, i) => turnSlice(item.input, Math.floor(random() * 8), data, i * SLICE_VALUES));
  const labels = new Float32Array(items.length * 2);
  items.forEach((item, i) => (labels[i * 2 + item.label] = 1));
  return { x: tf.tensor4d(data, [items.length, INPUT_SIZE, INPUT_SIZE, INPUT_CHANNELS.length]), y: tf.tensor2d(labels, [items.length, 2]) };
}

function validate(model: tf.LayersModel, validation: readonly PhantomSlices[]): { loss: number; balancedLoss: number; accuracy: number; auc: number | null; perPhantom: number[][] } {
  const scored: Scored[] = [];
  const perPhantom = validation.map((phantom, g) => {
    const p = Array.from(predictSlices(model, phantom));
    phantom.labels.forEach((truth, s) => truth !== -1 && scored.push({ truth, probability: p[s]!, group: g }));
    return p;
  });
  const loss = (s: Scored) => -Math.log(Math.max(1e-7, s.truth ? s.probability : 1 - s.probability));
  const mean = (items: Scored[]) => (items.length ? items.reduce((sum, s) => sum + loss(s), 0) / items.length : 0);
  const pos = scored.filter((s) => s.truth === 1);
  const neg = scored.filter((s) => s.truth === 0);
  return {
    loss: mean(scored),
    balancedLoss: pos.length && neg.length ? (mean(pos) + mean(neg)) / 2 : mean(scored),
    accuracy: scored.length ? scored.filter((s) => (s.probability > 0.5 ? 1 : 0) === s.truth).length / scored.length : 0,
    auc: rocAuc(scored),
    perPhantom,
  };
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(`${file}.part`, JSON.stringify(value, null, 2) + '\n');
  await rename(`${file}.part`, file);
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  const started = now();
  const deadline = Date.now() + options.minutes * 60_000;
  const dataDeadline = Date.now() + options.minutes * 60_000 * options.dataShare;
  const root = process.cwd();
  const log = (line: string) => console.log(line);

  await tf.setBackend('wasm');
  await tf.ready();
  registerWasmConv2DBackpropFilter();
  log(`train: backend ${tf.getBackend()}, budget ${options.minutes} min, seed ${options.seed}, filters ${options.filters.join('/')}, cache ${path.relative(root, options.cache) || options.cache}`);

  // Data: validation first (it must exist), then training phantoms within the data budget.
  const describe = (p: PhantomSlices, cached: boolean, took: number) => {
    const a = p.acquisition;
    const counts = [1, 0, -1].map((l) => p.labels.filter((x) => x === l).length);
    return `seed ${p.spec.seed}: ${a.matrix.join('×')}×${a.slices} at ${a.voxelMm.join('×')} mm, b ${a.shells.join('/')} × ${a.directions} dirs + ${a.b0Count} b0, SNR ${a.snr.toFixed(1)}, ${p.lesions.length} lesion(s); slices ${counts[0]} lesion / ${counts[1]} none / ${counts[2]} ambiguous, ${took.toFixed(1)} s${cached ? ' (cached)' : ''}`;
  };
  const pool = options.jobs > 1 ? new PhantomPool(new URL(import.meta.url), root, options.cache, options.jobs) : null;
  const source = pool ? pool.source(root, options.cache) : serialPhantomSource(root, options.cache);
  /** The phantom's slices, or null (logged) when the pipeline refused it. */
  const accepted = (made: MadePhantom): PhantomSlices | null => {
    if (!made.slices) log(made.skipped ?? `skipped phantom seed ${made.spec.seed}`);
    return made.slices;
  };
  const validation: PhantomSlices[] = [];
  const validationSpecs = Array.from({ length: options.valPhantoms }, (_, i): PhantomSpec => ({ seed: VALIDATION_SEED_OFFSET + options.seed + i, acquisition: options.acquisition }));
  for await (const made of source(validationSpecs)) {
    const phantom = accepted(made);
    if (!phantom) continue;
    validation.push(phantom);
    log(`validation ${describe(phantom, made.cached, made.seconds)}`);
  }
  const random = seededRandom(options.seed * 7919 + 17);
  const positives: TrainingSlice[] = [];
  const negatives: TrainingSlice[] = [];
  const sliceLabels: { seed: number; labels: number[] }[] = [];
  let trainingPhantoms = 0;
  const trainingSpecs = Array.from({ length: options.phantoms }, (_, i): PhantomSpec => ({ seed: options.seed + i, acquisition: options.acquisition }));
  let dataBudgetReached = false;
  const stop = () => (dataBudgetReached ||= trainingPhantoms > 0 && Date.now() > dataDeadline);
  for await (const made of source(trainingSpecs, stop)) {
    const phantom = accepted(made);
    if (!phantom) continue;
    trainingPhantoms++;
    sliceLabels.push({ seed: made.spec.seed, labels: phantom.labels });
    const at = (s: number) => phantom.inputs.slice(s * SLICE_VALUES, (s + 1) * SLICE_VALUES);
    const lesion = phantom.labels.flatMap((l, s) => (l === 1 ? [s] : []));
    const clear = shuffle(
      phantom.labels.flatMap((l, s) => (l === 0 ? [s] : [])),
      random,
    ).slice(0, Math.max(6, 2 * lesion.length));
    for (const s of lesion) positives.push({ input: at(s), label: 1 });
    for (const s of clear) negatives.push({ input: at(s), label: 0 });
    log(`training ${describe(phantom, made.cached, made.seconds)}`);
  }
  if (dataBudgetReached) log(`train: data budget (${Math.round(options.dataShare * 100)} % of ${options.minutes} min) reached after ${trainingPhantoms} training phantoms`);
  if (!validation.length || !trainingPhantoms) throw new Error(`the pipeline refused every ${validation.length ? 'training' : 'validation'} phantom (see the lines above)`);
  const dataSeconds = seconds(started);
  log(`train: data ready in ${dataSeconds.toFixed(1)} s: ${trainingPhantoms} training phantoms (${positives.length} lesion slices, ${negatives.length} lesion-free slices in the pool), ${validation.length} validation phantoms`);
  if (!positives.length) log('train: WARNING no lesion slice in the training data; the model cannot learn the lesion class from this run');

  // Training, on this thread; one core less makes the evaluation's phantoms meanwhile.
  if (pool && options.evalPhantoms > 0) pool.prefill(evaluationSpecs(options.evalPhantoms, EVALUATION_FIRST_SEED, options.acquisition), pool.size - 1);
  const trainStarted = now();
  const model = buildLesionCnn({ filters: options.filters, pooling: options.pooling, seed: options.seed });
  model.compile({ optimizer: tf.train.adam(LEARNING_RATE), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const epochs: EpochLog[] = [];
  let best: { epoch: number; weights: tf.Tensor[]; balancedLoss: number } | null = null;
  let firstBatchLoss: number | null = null;
  let lastEpochSeconds = 0;
  let stopReason = `${options.epochs} epochs done`;
  for (let epoch = 1; epoch <= options.epochs; epoch++) {
    if (epoch > 1 && Date.now() + lastEpochSeconds * 1000 > deadline) {
      stopReason = `time budget: epoch ${epoch} would not fit in the ${options.minutes} min`;
      break;
    }
    const t0 = now();
    const drawn = shuffle([...negatives], random).slice(0, Math.max(positives.length, BATCH));
    const order = shuffle([...positives, ...drawn], random);
    let lossSum = 0;
    let accuracySum = 0;
    let seen = 0;
    let overran = false;
    for (let start = 0; start < order.length; start += BATCH) {
      if (epoch > 1 && Date.now() > deadline) {
        overran = true;
        break;
      }
      const items = order.slice(start, start + BATCH);
      const { x, y } = batchTensors(items, random);
      const [loss, accuracy] = (await model.trainOnBatch(x, y)) as number[];
      tf.dispose([x, y]);
      // trainOnBatch settles without a turn of the event loop: without this, the phantom workers'
      // messages (the evaluation's phantoms made meanwhile) would wait for the end of training.
      await new Promise((resolve) => setImmediate(resolve));
      firstBatchLoss ??= loss!;
      lossSum += loss! * items.length;
      accuracySum += accuracy! * items.length;
      seen += items.length;
    }
    if (overran) {
      stopReason = `time budget: epoch ${epoch} overran the ${options.minutes} min and was dropped`;
      break;
    }
    const v = validate(model, validation);
    lastEpochSeconds = seconds(t0);
    const entry: EpochLog = { epoch, trainLoss: lossSum / Math.max(1, seen), trainAccuracy: accuracySum / Math.max(1, seen), slices: seen, valLoss: v.loss, valBalancedLoss: v.balancedLoss, valAccuracy: v.accuracy, valAuc: v.auc, seconds: lastEpochSeconds };
    epochs.push(entry);
    const improved = !best || v.balancedLoss < best.balancedLoss;
    if (improved) {
      if (best) tf.dispose(best.weights);
      best = { epoch, weights: model.getWeights().map((w) => w.clone()), balancedLoss: v.balancedLoss };
    }
    log(
      `epoch ${epoch}: train loss ${entry.trainLoss.toFixed(4)} acc ${entry.trainAccuracy.toFixed(3)} (${seen} slices); val loss ${v.loss.toFixed(4)} balanced ${v.balancedLoss.toFixed(4)} acc ${v.accuracy.toFixed(3)} AUC ${v.auc === null ? '–' : v.auc.toFixed(3)}; ${lastEpochSeconds.toFixed(1)} s${improved ? ' *best' : ''}`,
    );
  }
  if (!best) throw new Error('no epoch finished within the budget');
  model.setWeights(best.weights);
  const trainSeconds = seconds(trainStarted);

  // The volume threshold: maximises volume-level F1 on the validation phantoms (best epoch's weights).
  const v = validate(model, validation);
  const volumeScores: Scored[] = validation.map((p, g) => ({ truth: p.lesions.length ? 1 : 0, probability: Math.max(0, ...v.perPhantom[g]!), group: g }));
  const volumeThreshold = bestF1Threshold(volumeScores);
  log(`train: best epoch ${best.epoch} of ${epochs.length} (${stopReason}); volume threshold ${volumeThreshold.toFixed(4)} (best F1 on ${validation.length} validation phantoms); data ${dataSeconds.toFixed(1)} s, training ${trainSeconds.toFixed(1)} s`);

  const trainedOn =
    `synthetic brain DTI phantoms (scripts/phantom/brain-phantom.ts): ${trainingPhantoms} training phantoms, seeds ${options.seed}–${options.seed + trainingPhantoms - 1}, ` +
    `${positives.length} lesion slices and ${negatives.length} lesion-free slices (balanced by sampling per epoch); ${validation.length} validation phantoms; ` +
    `${options.minutes} min budget on ${tf.getBackend()}, best of ${epochs.length} epochs (epoch ${best.epoch}), Adam ${LEARNING_RATE}, batch ${BATCH}, filters ${options.filters.join('/')}, global ${options.pooling} pooling, flips and quarter turns` +
    (Object.keys(options.acquisition).length ? `, acquisition fixed to ${JSON.stringify(options.acquisition)}` : '') +
    '. Not for clinical diagnosis.';
  await mkdir(options.out, { recursive: true });
  const manifest = await saveModel(model, options.out, { name: 'neuroward-lesion-cnn', version: `0.2.0-seed${options.seed}`, trainedOn, decisionThreshold: volumeThreshold });
  await writeJson(path.join(options.out, 'training.json'), {
    options: { ...options, out: path.relative(root, options.out), cache: path.relative(root, options.cache) },
    dataSeconds,
    trainSeconds,
    bestEpoch: best.epoch,
    stopReason,
    firstBatchLoss,
    volumeThreshold,
    epochs,
    trainingSlices: { lesion: positives.length, lesionFreePool: negatives.length },
    sliceLabels,
  });
  log(`train: saved ${path.relative(root, options.out) || options.out} (weights SHA-256 ${manifest.sha256['weights.bin'].slice(0, 16)}…)`);
  tf.dispose(best.weights);

  if (options.evalPhantoms > 0) {
    const { report } = await evaluateModel(model, {
      root,
      cacheDir: options.cache,
      count: options.evalPhantoms,
      firstSeed: EVALUATION_FIRST_SEED,
      acquisition: options.acquisition,
      volumeThreshold,
      log,
      deadline: options.evalMinutes === null ? null : Date.now() + options.evalMinutes * 60_000,
      source,
    });
    await writeJson(path.join(options.out, 'evaluation.json'), { model: { name: manifest.name, version: manifest.version, sha256: manifest.sha256 }, ...report });
    log(formatReport(report));
  }
  await pool?.close();
}

// Awaited at the top level: the launcher (scripts/train.mjs) removes the bundle once its import settles,
// and the phantom workers load that same file.
if (!runPhantomWorkerIfAny()) {
  await main().catch((error: unknown) => {
    console.error(`train: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  });
}
