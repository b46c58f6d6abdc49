/**
 * Which tfjs backend runs the CNN (issue 9 item 2): the first of the chain that works wins, and every
 * one skipped says why, so the app and the CLI can show it.
 *
 *   tfjs-node-gpu (CUDA) → webgpu (Dawn through the `webgpu` npm package + tfjs-backend-webgpu)
 *   → tfjs-node (libtensorflow on the CPU) → wasm (XNNPACK, SIMD; threads are off under Node) → cpu (pure JS)
 *
 * The optional packages are imported by a name held in a variable: they are absent on most machines
 * (tfjs-node's install downloads libtensorflow, which fails offline), and neither TypeScript nor the
 * bundlers must require them to exist. The wasm backend gets the Conv2DBackpropFilter kernel it lacks
 * (model/wasm-conv2d-grad.ts), so the same backend can fine-tune as well as infer.
 */
import * as tf from '@tensorflow/tfjs';
import { registerWasmConv2DBackpropFilter } from './model/wasm-conv2d-grad.js';

export const BACKEND_CHAIN = ['tfjs-node-gpu', 'webgpu', 'tfjs-node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_CHAIN)[number];

export interface SkippedBackend {
  backend: BackendName;
  reason: string;
}

export interface BackendChoice {
  /** The chain's name of the backend in use. */
  name: BackendName;
  /** tfjs's own name for it (tensorflow, webgpu, wasm, cpu). */
  tfjsBackend: string;
  /** e.g. "SIMD, no threads" for wasm. */
  detail: string;
  /** Every backend tried before it, with why it was not used. */
  skipped: SkippedBackend[];
}

export function isBackendName(value: string): value is BackendName {
  return (BACKEND_CHAIN as readonly string[]).includes(value);
}

/** Imports a package that may be absent; the error says so in words. */
async function importOptional(name: string): Promise<unknown> {
  try {
    return (await import(name)) as unknown;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw new Error(`${name} is not installed`);
    throw new Error(`${name} failed to load: ${(error as Error).message.split('\n')[0]}`);
  }
}

async function activate(tfjsName: string): Promise<void> {
  if (!(await tf.setBackend(tfjsName))) throw new Error(`tfjs could not initialise its ${tfjsName} backend`);
  await tf.ready();
}

interface WebGpuModule {
  create: (options: string[]) => { requestAdapter: () => Promise<unknown> };
  globals: Record<string, unknown>;
}

/** Tries one backend; resolves with its detail or throws with the reason it cannot be used. */
async function tryBackend(name: BackendName): Promise<{ tfjsBackend: string; detail: string }> {
  switch (name) {
    case 'tfjs-node-gpu':
      await importOptional('@tensorflow/tfjs-node-gpu');
      await activate('tensorflow');
      return { tfjsBackend: 'tensorflow', detail: 'libtensorflow with CUDA' };
    case 'webgpu': {
      const dawn = (await importOptional('webgpu')) as WebGpuModule;
      const gpu = dawn.create([]);
      const adapter = await gpu.requestAdapter();
      if (!adapter) throw new Error('Dawn (the webgpu package) found no GPU adapter (no Vulkan/Metal/D3D12 device)');
      Object.assign(globalThis, dawn.globals);
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
      await importOptional('@tensorflow/tfjs-backend-webgpu');
      await activate('webgpu');
      return { tfjsBackend: 'webgpu', detail: 'Dawn' };
    }
    case 'tfjs-node':
      await importOptional('@tensorflow/tfjs-node');
      await activate('tensorflow');
      return { tfjsBackend: 'tensorflow', detail: 'libtensorflow on the CPU' };
    case 'wasm': {
      await import('@tensorflow/tfjs-backend-wasm');
      await activate('wasm');
      registerWasmConv2DBackpropFilter();
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
      return { tfjsBackend: 'wasm', detail: `${simd ? 'SIMD' : 'no SIMD'}, ${threads ? 'threads' : 'no threads'}` };
    }
    case 'cpu':
      await activate('cpu');
      return { tfjsBackend: 'cpu', detail: 'pure JavaScript' };
  }
}

/**
 * Sets tfjs's backend: `only` forces one (failing with its reason when it does not work), otherwise
 * the chain's first that works. Process-wide: tfjs has one active backend per thread.
 */
export async function selectBackend(only?: BackendName): Promise<BackendChoice> {
  const skipped: SkippedBackend[] = [];
  for (const name of only ? [only] : BACKEND_CHAIN) {
    try {
      const { tfjsBackend, detail } = await tryBackend(name);
      return { name, tfjsBackend, detail, skipped };
    } catch (error) {
      if (only) throw new Error(`the ${name} backend cannot be used here: ${(error as Error).message}`);
      skipped.push({ backend: name, reason: (error as Error).message });
    }
  }
  // cpu is part of tfjs itself and always registers; reaching this means tfjs is broken.
  throw new Error(`no tfjs backend works: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`);
}

/** One line for people: "wasm (SIMD, no threads); skipped tfjs-node-gpu: …; webgpu: …". */
export function describeBackend(choice: BackendChoice): string {
  const skipped = choice.skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ');
  return `${choice.name} (${choice.detail})${skipped ? `; skipped ${skipped}` : ''}`;
}
