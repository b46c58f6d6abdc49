/**
 * The slice classifier of the AI read and where it looks (issue 9 item 1).
 *
 * The published design: three convolutional layers with ReLU, two max-pooling layers, a dense output,
 * trained with cross-entropy. Its "softmax output with binary cross-entropy" does not fit together; this
 * model has a two-class softmax (no lesion, lesion) trained with categorical cross-entropy. Between the
 * last convolution and the dense layer sits a global pool (max by default, average as an option): the
 * decision then cannot depend on where in the window the brain lies, only on what the filters found,
 * which keeps the model from learning one generator's anatomy. With either pool Grad-CAM's weights are
 * the dense layer's (scaled), so the heat map is the class activation map.
 *
 * Grad-CAM (Selvaraju et al. 2017): the gradient of the lesion score with respect to the last
 * convolution's activations, averaged over positions, weights those activations; their ReLU is the heat
 * map, resized to the input. The score is picked from the output by a product with a one-hot vector:
 * `gather` has no gradient on the wasm backend.
 */
import * as tf from '@tensorflow/tfjs';
import { INPUT_CHANNELS, INPUT_SIZE } from '../slices.js';

export const LESION_CLASS = 1;

export interface LesionCnnOptions {
  /** Filters of the three convolutions (default 16, 32, 64). */
  filters?: [number, number, number];
  /**
   * How the last convolution's map becomes one vector for the dense layer (default max): the strongest
   * response anywhere (a small lesion is as visible as a large one) or the mean over the window.
   */
  pooling?: 'max' | 'average';
  /** Seed of the weight initialisers. */
  seed?: number;
}

/** The untrained model: input [batch, 128, 128, 7], output [batch, 2] probabilities (no lesion, lesion). */
export function buildLesionCnn(options: LesionCnnOptions = {}): tf.Sequential {
  const [f1, f2, f3] = options.filters ?? [16, 32, 64];
  const seed = options.seed ?? 1;
  const init = (k: number) => tf.initializers.heNormal({ seed: seed * 10 + k });
  return tf.sequential({
    name: 'neuroward_lesion_cnn',
    layers: [
      tf.layers.conv2d({ name: 'conv1', inputShape: [INPUT_SIZE, INPUT_SIZE, INPUT_CHANNELS.length], filters: f1, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }),
      tf.layers.conv2d({ name: 'conv2', filters: f2, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }),
      tf.layers.conv2d({ name: 'conv3', filters: f3, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(3) }),
      options.pooling === 'average' ? tf.layers.globalAveragePooling2d({ name: 'pool3' }) : tf.layers.globalMaxPooling2d({ name: 'pool3' }),
      tf.layers.dense({ name: 'output', units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 10 + 4 }) }),
    ],
  });
}

export interface SliceRead {
  /** Lesion probability per input. */
  probability: Float32Array;
  /** Per input, the Grad-CAM heat map, INPUT_SIZE × INPUT_SIZE, in [0, 1] (all 0 when nothing drives the lesion score). */
  heatMaps: Float32Array;
}

/**
 * Probabilities and Grad-CAM heat maps for a batch of inputs (NHWC, INPUT_SIZE², INPUT_CHANNELS).
 * `lastConv` names the convolution whose activations are weighted (default conv3).
 */
export function readSlices(model: tf.LayersModel, inputs: tf.Tensor4D, lastConv = 'conv3'): SliceRead {
  const layers = model.layers;
  const split = layers.findIndex((l) => l.name === lastConv);
  if (split < 0) throw new Error(`the model has no layer "${lastConv}"`);
  return tf.tidy(() => {
    let activations: tf.Tensor = inputs;
    for (const layer of layers.slice(0, split + 1)) activations = layer.apply(activations) as tf.Tensor;
    const head = (a: tf.Tensor): tf.Tensor => layers.slice(split + 1).reduce((h, layer) => layer.apply(h) as tf.Tensor, a);
    const oneHot = tf.oneHot(tf.fill([inputs.shape[0]], LESION_CLASS, 'int32'), 2);
    // d(score)/d(activations), the score taken by a one-hot product (no gather: no gradient on wasm).
    const score = (a: tf.Tensor) => tf.sum(tf.mul(head(a), oneHot));
    const gradients = tf.grad(score)(activations);
    const weights = tf.mean(gradients, [1, 2], true); // [batch, 1, 1, filters]
    const cam = tf.relu(tf.sum(tf.mul(weights, activations), -1, true)); // [batch, h, w, 1]
    // Half-pixel centres: a pooled cell i covers input pixels 4i … 4i + 3, centred at 4i + 1.5, which is
    // where this mapping puts it (corner alignment would shift the map by up to 2 pixels).
    const resized = tf.image.resizeBilinear(cam as tf.Tensor4D, [INPUT_SIZE, INPUT_SIZE], false, true);
    const peak = tf.max(resized, [1, 2, 3], true);
    const normalised = tf.where(tf.greater(peak, 0), tf.div(resized, tf.maximum(peak, 1e-12)), tf.zerosLike(resized));
    const probability = tf.sum(tf.mul(head(activations), oneHot), 1);
    return { probability: probability.dataSync() as Float32Array, heatMaps: normalised.dataSync() as Float32Array };
  });
}
