/**
 * The slice CNN and its Grad-CAM (src/main/analysis/model/cnn.ts): with hand-set weights whose answer
 * is known (the lesion score reads one channel's brightness, so the heat map must peak where that
 * channel is bright), and the same numbers on the wasm and cpu backends (issue 9 item 2: within 1e-4).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildLesionCnn, readSlices } from '../../src/main/analysis/model/cnn.js';
import { registerWasmConv2DBackpropFilter } from '../../src/main/analysis/model/wasm-conv2d-grad.js';
import { INPUT_CHANNELS, INPUT_SIZE } from '../../src/main/analysis/slices.js';
import { mulberry32 } from '../../src/shared/random.js';

const C = INPUT_CHANNELS.length;

beforeAll(async () => {
  await tf.ready();
  await tf.setBackend('wasm');
  registerWasmConv2DBackpropFilter();
});

/** One input with a bright disc (radius r) in channel 0 at (u, v); or empty. */
function discInput(u: number, v: number, r: number): Float32Array {
  const data = new Float32Array(INPUT_SIZE * INPUT_SIZE * C);
  for (let y = 0; y < INPUT_SIZE; y++) for (let x = 0; x < INPUT_SIZE; x++) if (Math.hypot(x - u, y - v) <= r) data[(y * INPUT_SIZE + x) * C] = 1;
  return data;
}

/** conv1–3 pass channel 0 through filter 0 (centre tap 1); the output reads filter 0 as lesion evidence. */
function passThroughModel(): tf.Sequential {
  const model = buildLesionCnn({ filters: [4, 4, 4] });
  model.setWeights(
    model.getWeights().map((w) => {
      const values = new Float32Array(w.size);
      if (w.shape.length === 4) values[(1 * 3 + 1) * w.shape[2]! * w.shape[3]!] = 1; // [1, 1, 0, 0]
      if (w.shape.length === 2) {
        values[0] = -4; // filter 0 → no lesion
        values[1] = 4; // filter 0 → lesion
      }
      return tf.tensor(values, w.shape);
    }),
  );
  return model;
}

describe('slice CNN and Grad-CAM', () => {
  it('has the published shape: three ReLU convolutions, two max-pools, a dense two-class softmax', () => {
    const model = buildLesionCnn();
    const kinds = model.layers.map((l) => l.getClassName());
    expect(kinds.filter((k) => k === 'Conv2D')).toHaveLength(3);
    expect(kinds.filter((k) => k === 'MaxPooling2D')).toHaveLength(2);
    expect(kinds.at(-1)).toBe('Dense');
    expect(model.outputs[0]!.shape).toEqual([null, 2]);
    expect(model.inputs[0]!.shape).toEqual([null, INPUT_SIZE, INPUT_SIZE, C]);
    model.dispose();
  });

  it('points the heat map at what drives the lesion score, and is silent when nothing does', () => {
    const model = passThroughModel();
    const cases = [
      [40, 90],
      [100, 30],
      [64, 64],
    ] as const;
    const batch = new Float32Array(INPUT_SIZE * INPUT_SIZE * C * (cases.length + 1));
    cases.forEach(([u, v], i) => batch.set(discInput(u, v, 6), i * INPUT_SIZE * INPUT_SIZE * C));
    const inputs = tf.tensor4d(batch, [cases.length + 1, INPUT_SIZE, INPUT_SIZE, C]);
    const read = readSlices(model, inputs);
    cases.forEach(([u, v], i) => {
      const map = read.heatMaps.subarray(i * INPUT_SIZE * INPUT_SIZE, (i + 1) * INPUT_SIZE * INPUT_SIZE);
      // The disc is a plateau of the map: its hot part's centre of mass must sit on the disc's centre.
      let [sx, sy, sw] = [0, 0, 0];
      map.forEach((h, p) => {
        if (h < 0.5) return;
        sx += h * (p % INPUT_SIZE);
        sy += h * Math.floor(p / INPUT_SIZE);
        sw += h;
      });
      expect(Math.hypot(sx / sw - u, sy / sw - v)).toBeLessThan(1.5);
      expect(Math.max(...map)).toBeCloseTo(1, 6);
      // Far from the disc the map is cold.
      const far = map[((v + 40) % INPUT_SIZE) * INPUT_SIZE + ((u + 40) % INPUT_SIZE)]!;
      expect(far).toBeLessThan(0.05);
      expect(read.probability[i]).toBeGreaterThan(0.5);
    });
    // The empty input: logits 0, probability ½, nothing to point at.
    expect(read.probability[cases.length]).toBeCloseTo(0.5, 6);
    expect(Math.max(...read.heatMaps.subarray(cases.length * INPUT_SIZE * INPUT_SIZE))).toBe(0);
    inputs.dispose();
    model.dispose();
  });

  it('gives the same probabilities and heat maps on wasm and cpu (within 1e-4)', async () => {
    const random = mulberry32(9);
    const data = Float32Array.from({ length: 3 * INPUT_SIZE * INPUT_SIZE * C }, () => random());
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const model = buildLesionCnn({ seed: 3 });
      const inputs = tf.tensor4d(data, [3, INPUT_SIZE, INPUT_SIZE, C]);
      const read = readSlices(model, inputs);
      inputs.dispose();
      model.dispose();
      return read;
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    wasm.probability.forEach((p, i) => expect(Math.abs(p - cpu.probability[i]!)).toBeLessThan(1e-4));
    let worst = 0;
    wasm.heatMaps.forEach((h, i) => (worst = Math.max(worst, Math.abs(h - cpu.heatMaps[i]!))));
    expect(worst).toBeLessThan(1e-4);
    await tf.setBackend('wasm');
  }, 60_000);
});
