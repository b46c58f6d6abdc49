/**
 * The backend chain (src/main/analysis/backends.ts) on this machine: CUDA (tfjs-node-gpu), WebGPU
 * (the `webgpu` package) and tfjs-node are not there, so each is skipped with its reason and wasm wins;
 * the whole pipeline gives the same slice probabilities and heat map on wasm and on cpu (issue 9 item 2:
 * within 1e-4).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_CHAIN, describeBackend, selectBackend } from '../../src/main/analysis/backends.js';
import { analyzeSeries } from '../../src/main/analysis/pipeline.js';
import { savedTestModel, smallPhantom } from './pipeline-support.js';

let modelDir = '';
beforeAll(async () => {
  modelDir = (await savedTestModel(7)).dir;
});

// What this machine has: the test says which packages it expects absent, and checks that they are.
const absent = ['@tensorflow/tfjs-node-gpu', 'webgpu', '@tensorflow/tfjs-node'];

describe('backend chain', () => {
  it('skips tfjs-node-gpu, webgpu and tfjs-node here, each with its reason, and picks wasm with SIMD', async () => {
    for (const name of absent) expect(existsSync(path.resolve('node_modules', name)), `${name} is installed here; this test expects it absent`).toBe(false);
    const choice = await selectBackend();
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.detail).toBe('SIMD, no threads');
    expect(choice.skipped.map((s) => s.backend)).toEqual(['tfjs-node-gpu', 'webgpu', 'tfjs-node']);
    expect(choice.skipped[0]!.reason).toBe('@tensorflow/tfjs-node-gpu is not installed');
    expect(choice.skipped[1]!.reason).toBe('webgpu is not installed');
    expect(choice.skipped[2]!.reason).toBe('@tensorflow/tfjs-node is not installed');
    expect(describeBackend(choice)).toMatch(/^wasm \(SIMD, no threads\); skipped tfjs-node-gpu: .*webgpu: .*tfjs-node: /);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(BACKEND_CHAIN.at(-1)).toBe('cpu');
  });

  it('refuses a forced backend that does not work, saying why', async () => {
    await expect(selectBackend('tfjs-node-gpu')).rejects.toThrow('the tfjs-node-gpu backend cannot be used here: @tensorflow/tfjs-node-gpu is not installed');
    const cpu = await selectBackend('cpu');
    expect(cpu).toMatchObject({ name: 'cpu', skipped: [] });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('gives the same slice probabilities and heat map on wasm and cpu (within 1e-4)', async () => {
    const phantom = smallPhantom(6);
    const wasm = await analyzeSeries(phantom.series, { model: modelDir, backend: 'wasm', fitWorkers: 0 });
    const cpu = await analyzeSeries(phantom.series, { model: modelDir, backend: 'cpu', fitWorkers: 0 });
    expect(wasm.backend.name).toBe('wasm');
    expect(cpu.backend.name).toBe('cpu');
    expect(cpu.finding.slices.map((s) => s.z)).toEqual(wasm.finding.slices.map((s) => s.z));
    wasm.finding.slices.forEach((s, i) => expect(Math.abs(s.probability - cpu.finding.slices[i]!.probability)).toBeLessThan(1e-4));
    let worst = 0;
    wasm.heatMap.forEach((h, v) => (worst = Math.max(worst, Math.abs(h - cpu.heatMap[v]!))));
    expect(worst).toBeLessThan(1e-4);
    expect(Array.from(cpu.clusters.labels)).toEqual(Array.from(wasm.clusters.labels));
  }, 180_000);
});
