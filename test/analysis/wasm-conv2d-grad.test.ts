/**
 * The wasm Conv2DBackpropFilter kernel (src/main/analysis/model/wasm-conv2d-grad.ts) against tfjs's own
 * cpu-backend kernel (the reference, written and tested by the TensorFlow.js authors): the same filter
 * gradients, and the same weights after training steps of a small CNN.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerWasmConv2DBackpropFilter } from '../../src/main/analysis/model/wasm-conv2d-grad.js';
import { mulberry32 } from '../../src/shared/random.js';

beforeAll(async () => {
  await tf.ready();
  await tf.setBackend('wasm');
  registerWasmConv2DBackpropFilter();
});

const random = (shape: number[], seed: number) => {
  const r = mulberry32(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * r() - 1);
};

/** The filter gradient of sum(conv2d(x, w) · weights) on a backend. */
async function filterGradient(backend: string, c: { x: number[]; w: number[]; strides: number; pad: 'same' | 'valid' | number }): Promise<Float32Array> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const x = tf.tensor(random(c.x, 1), c.x);
    const w = tf.tensor(random(c.w, 2), c.w);
    const f = (filter: tf.Tensor) => {
      const y = tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, c.strides, c.pad);
      return tf.sum(tf.mul(y, tf.tensor(random(y.shape, 3), y.shape)));
    };
    return tf.grad(f)(w).dataSync() as Float32Array;
  });
}

describe('Conv2DBackpropFilter on wasm', () => {
  it('is registered on wasm (cpu has its own)', () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')).toBeDefined();
  });

  const cases = [
    { x: [2, 9, 11, 3], w: [3, 3, 3, 4], strides: 1, pad: 'same' as const },
    { x: [1, 8, 8, 2], w: [3, 3, 2, 5], strides: 1, pad: 'valid' as const },
    { x: [3, 10, 9, 4], w: [3, 3, 4, 2], strides: 2, pad: 'same' as const },
    { x: [2, 7, 7, 1], w: [5, 5, 1, 3], strides: 1, pad: 2 },
    { x: [2, 16, 16, 7], w: [1, 1, 7, 8], strides: 1, pad: 'same' as const },
    { x: [1, 12, 12, 3], w: [4, 2, 3, 2], strides: 2, pad: 'valid' as const },
  ];
  for (const c of cases) {
    it(`x ${c.x.join('×')}, filter ${c.w.join('×')}, stride ${c.strides}, pad ${c.pad}: equals the cpu kernel within 1e-4`, async () => {
      const reference = await filterGradient('cpu', c);
      const wasm = await filterGradient('wasm', c);
      expect(wasm.length).toBe(reference.length);
      const scale = Math.max(...reference.map(Math.abs));
      for (let i = 0; i < wasm.length; i++) expect(Math.abs(wasm[i]! - reference[i]!)).toBeLessThan(1e-4 * scale);
    });
  }

  it('frees every intermediate buffer it makes', async () => {
    const c = cases[2]!;
    await filterGradient('wasm', c);
    const buffers = tf.engine().backend.numDataIds();
    for (let i = 0; i < 5; i++) await filterGradient('wasm', c);
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
  });

  it('trains a three-layer CNN the same on wasm as on cpu, and keeps no more tensors than cpu', async () => {
    const train = async (backend: string) => {
      await tf.setBackend(backend);
      const before = tf.memory().numTensors;
      const model = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [16, 16, 3], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
        ],
      });
      const optimizer = tf.train.sgd(0.05);
      model.compile({ optimizer, loss: 'categoricalCrossentropy' });
      const x = tf.tensor(random([8, 16, 16, 3], 5), [8, 16, 16, 3]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 1, 0, 0, 1], 'int32'), 2);
      await model.fit(x, y, { epochs: 3, batchSize: 4, shuffle: false, verbose: 0 });
      const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
      x.dispose();
      y.dispose();
      model.dispose();
      optimizer.dispose();
      return { weights, leaked: tf.memory().numTensors - before };
    };
    const cpu = await train('cpu');
    const wasm = await train('wasm');
    // tfjs-layers itself keeps one tensor after fit on either backend; the kernel adds none.
    expect(wasm.leaked).toBe(cpu.leaked);
    expect(wasm.weights.length).toBe(cpu.weights.length);
    wasm.weights.forEach((w, i) => w.forEach((v, k) => expect(Math.abs(v - cpu.weights[i]![k]!)).toBeLessThan(1e-4)));
  }, 60_000);
});
