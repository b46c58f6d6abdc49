/**
 * Conv2DBackpropFilter for tfjs's wasm backend, which has none (checked on @tensorflow/tfjs-backend-wasm
 * 4.22: Conv2D and Conv2DBackpropInput exist, the filter gradient does not), so a Conv2D layer cannot be
 * trained there. The cpu backend has one, but a training step of the 3-layer 128×128 CNN there took
 * 160 s for a batch of 16 (0.6 s on wasm with this kernel), so training needs it.
 *
 * The filter gradient of a convolution is itself a convolution, of the input by the output gradient:
 *   dW[i, j, c, o] = Σ_b,h,w pad(x)[b, h·s + i, w·s + j, c] · dy[b, h, w, o].
 * With the input's channels as the batch and the batch as channels — X' = pad(x) as [Ci, Hp, Wp, B],
 * F' = dy as [Ho, Wo, B, Co] — that is conv2d(X', F') with stride 1, dilation s and no padding, whose
 * output [Ci, ≥kh, ≥kw, Co] cut to kh × kw and transposed is dW. One Conv2D (XNNPACK in wasm) does the
 * whole sum; cutting the kh·kw taps out one by one and multiplying each (tried first) took 8× longer
 * (2.9 s against 0.37 s for one batch of 16 at 128×128×7 → 8 filters, tf.profile kernel time).
 * Only kernels wasm has are used, called through the registry with the backend they were given, and
 * every intermediate is disposed before returning.
 */
import * as tf from '@tensorflow/tfjs';
import type { Conv2DBackpropFilterAttrs, KernelBackend, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

const BACKEND = 'wasm';

function kernel(name: string): KernelFunc {
  const config = tf.getKernel(name, BACKEND);
  if (!config) throw new Error(`the ${BACKEND} backend has no ${name} kernel`);
  return config.kernelFunc;
}

/** Registers the kernel once per process (no-op when the backend already has one). */
export function registerWasmConv2DBackpropFilter(): void {
  if (tf.getKernel('Conv2DBackpropFilter', BACKEND)) return;
  tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: BACKEND, kernelFunc: conv2DBackpropFilter });
}

const conv2DBackpropFilter: KernelFunc = ({ inputs, backend: untypedBackend, attrs }) => {
  // The registry types the backend as {}; every backend is a KernelBackend, which can free a buffer.
  const backend = untypedBackend as KernelBackend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  if (dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter on ${BACKEND}: only NHWC is implemented, got ${dataFormat}`);
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const [kh, kw, ci, co] = filterShape;
  const { strideHeight, strideWidth, padInfo } = info;
  const run = (name: string, ins: Record<string, TensorInfo> | TensorInfo[], at: NamedAttrMap = {}): TensorInfo => kernel(name)({ inputs: ins as Record<string, TensorInfo>, backend, attrs: at }) as TensorInfo;
  const made: TensorInfo[] = [];
  const keep = (t: TensorInfo): TensorInfo => (made.push(t), t);
  try {
    const padded = padInfo.top || padInfo.bottom || padInfo.left || padInfo.right
      ? keep(run('PadV2', { x }, { paddings: [[0, 0], [padInfo.top, padInfo.bottom], [padInfo.left, padInfo.right], [0, 0]], constantValue: 0 }))
      : x;
    const channelsAsBatch = keep(run('Transpose', { x: padded }, { perm: [3, 1, 2, 0] }));
    const dyAsFilter = keep(run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }));
    const full = keep(run('Conv2D', { x: channelsAsBatch, filter: dyAsFilter }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [strideHeight, strideWidth] }));
    const cut =
      full.shape[1] === kh && full.shape[2] === kw
        ? full
        : keep(run('Slice', { x: full }, { begin: [0, 0, 0, 0], size: [ci, kh, kw, co] }));
    // The result is not in `made`: it is handed to the engine.
    return run('Transpose', { x: cut }, { perm: [1, 2, 0, 3] });
  } finally {
    for (const t of made) backend.disposeData(t.dataId);
  }
};
