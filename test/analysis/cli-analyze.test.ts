/**
 * `neuroward analyze` (the built CLI, dist/cli/neuroward.js) with an untrained model saved as real
 * files: on the Siemens mosaic in ../shared/data and on a phantom it writes clusters.nii.gz,
 * heatmap.nii.gz (the input's grid) and a valid FHIR R4 report.json, prints stage times and the backend
 * on stderr and exactly one JSON object on stdout; bad input and a bad model exit 1 with the reason and
 * leave nothing in --out (issue 9 items 9 and 11); usage errors exit 2.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FhirValidator } from '../../src/main/fhir/validation.js';
import { readNifti, writeNifti } from '../../src/main/imaging/nifti.js';
import { fslGradientText } from '../../src/main/imaging/tensor/phantom.js';
import type { DwiSeries } from '../../src/main/imaging/types.js';
import { MODEL_FILES, modelHash, type ModelManifest } from '../../src/main/analysis/model/model-files.js';
import { sharedData } from '../support/shared-data.js';
import { tempDir } from '../support/harness.js';
import { savedTestModel, smallPhantom } from './pipeline-support.js';
import { BUILT_CLI, runCli } from '../support/cli-process.js';

const CLI = BUILT_CLI;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Several runs go two at a time on 2 cores: the CLI runs as a child process. */
const cli = (...args: string[]): Promise<Run> => runCli(args);

let model: { dir: string; manifest: ModelManifest };

/** Writes `series` as dwi.nii.gz + .bval + .bvec in a new folder; returns the .nii.gz. */
async function writeSeries(series: Pick<DwiSeries, 'dims' | 'data' | 'pixdim' | 'affine' | 'bvals' | 'bvecs'>, name: string): Promise<string> {
  const dir = tempDir(`nw-analyze-${name}-`);
  const nii = path.join(dir, 'dwi.nii.gz');
  await writeNifti(nii, { dims: [...series.dims], pixdim: [...series.pixdim], affine: series.affine, data: series.data });
  const text = fslGradientText(series.bvals, series.bvecs);
  writeFileSync(path.join(dir, 'dwi.bval'), text.bval);
  writeFileSync(path.join(dir, 'dwi.bvec'), text.bvec);
  return nii;
}

function expectNothingWritten(out: string): void {
  expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
  model = await savedTestModel(11);
});

describe('neuroward analyze', () => {
  it('reads the Siemens mosaic: three files in the input grid, a valid FHIR report, one JSON object on stdout', async () => {
    const input = sharedData('dwi-siemens-mosaic', 'In', '4_DWI_SagAPmosaic');
    const out = path.join(tempDir('nw-analyze-siemens-'), 'out');
    const run = await cli('analyze', input, '--out', out, '--json', '--model', model.dir);
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(summary).sort()).toEqual(['backend', 'finding', 'probability', 'regions', 'stages']);
    expect(['suspected', 'not-found']).toContain(summary.finding);
    expect(summary.probability).toBeGreaterThanOrEqual(0);
    expect(summary.probability).toBeLessThanOrEqual(1);
    expect(summary.backend).toBe('wasm');
    const stages = summary.stages as { name: string; ms: number }[];
    expect(stages.map((s) => s.name)).toEqual(['load', 'checks', 'backend', 'model', 'fit', 'features', 'pca-kmeans', 'slices', 'cnn', 'findings']);
    for (const s of stages) expect(typeof s.ms).toBe('number');
    for (const r of summary.regions as { centroidVoxel: number[]; volumeMl: number; probability: number }[]) {
      expect(r.centroidVoxel).toHaveLength(3);
      expect(r.volumeMl).toBeGreaterThan(0);
    }
    for (const name of ['fit', 'cnn', 'findings']) expect(run.stderr).toMatch(new RegExp(`^${name} \\d+ ms$`, 'm'));
    expect(run.stderr).toMatch(/^backend: wasm \(SIMD, no threads\); skipped tfjs-node-gpu: @tensorflow\/tfjs-node-gpu is not installed; webgpu: webgpu is not installed; tfjs-node: /m);

    expect(readdirSync(out).sort()).toEqual(['clusters.nii.gz', 'heatmap.nii.gz', 'report.json']);
    // The input's grid: what `dti info` reports for this series (dcm2niix's dimensions and voxel size).
    const info = JSON.parse((await cli('dti', 'info', input, '--json')).stdout) as { dims: number[]; voxelSizeMm: number[] };
    const clusters = await readNifti(path.join(out, 'clusters.nii.gz'));
    const heat = await readNifti(path.join(out, 'heatmap.nii.gz'));
    for (const image of [clusters, heat]) {
      expect(image.dims.slice(0, 3)).toEqual(info.dims);
      image.pixdim.slice(0, 3).forEach((d, a) => expect(d).toBeCloseTo(info.voxelSizeMm[a]!, 4));
    }
    const labels = new Set(Array.from(clusters.data));
    expect([...labels].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(heat.data.every((h) => h >= 0 && h <= 1)).toBe(true);

    const bundle = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as { resourceType: string; entry: { resource: Record<string, unknown> & { resourceType: string } }[] };
    const validator = new FhirValidator();
    expect(validator.validate(bundle)).toEqual({ valid: true });
    for (const { resource } of bundle.entry) expect(validator.validate(resource), resource.resourceType).toEqual({ valid: true });
    const report = bundle.entry.find((e) => e.resource.resourceType === 'DiagnosticReport')!.resource as unknown as { status: string; conclusion: string; meta: { security: { code: string }[] } };
    expect(report.status).toBe('preliminary');
    expect(report.meta.security.map((s) => s.code)).toContain('AIAST');
    expect(report.conclusion).toContain(modelHash(model.manifest));
    expect(report.conclusion).toContain('not for clinical diagnosis');
    // The volume's probability, one per region, one per tissue cluster; the heat map as a PNG Media.
    const observations = bundle.entry.filter((e) => e.resource.resourceType === 'Observation');
    expect(observations.length).toBe(1 + (summary.regions as unknown[]).length + 4);
    const media = bundle.entry.filter((e) => e.resource.resourceType === 'Media');
    expect(media).toHaveLength(1);
    expect((media[0]!.resource.content as { contentType: string }).contentType).toBe('image/png');
  }, 180_000);

  it('reads a phantom given as NIfTI + bval/bvec', async () => {
    const nii = await writeSeries(smallPhantom(8).series, 'phantom');
    const out = path.join(path.dirname(nii), 'out');
    const run = await cli('analyze', nii, '--out', out, '--json', '--model', model.dir);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).backend).toBe('wasm');
    expect(readdirSync(out).sort()).toEqual(['clusters.nii.gz', 'heatmap.nii.gz', 'report.json']);
    const heat = await readNifti(path.join(out, 'heatmap.nii.gz'));
    expect(heat.dims.slice(0, 3)).toEqual([48, 48, 14]);
  }, 120_000);
});

describe('neuroward analyze refuses what it cannot read, writing nothing', () => {
  const base = smallPhantom(9).series;
  const [nx, ny, nz, nv] = base.dims;

  const cases: [string, () => Promise<string>, RegExp][] = [
    ['the GE sample without diffusion contrast', async () => sharedData('dwi-ge', 'In', '01_Ax_DWI_TENSOR_R2'), /No diffusion contrast: all \d+ diffusion-weighted volumes are copies of the b=0 volume/],
    ['a volume that is not diffusion-weighted (every b = 0)', () => writeSeries({ ...base, bvals: base.bvals.map(() => 0), bvecs: base.bvecs.map(() => [0, 0, 0]) }, 'nodwi'), /not a diffusion series|no diffusion-weighted volume/],
    [
      'a 3-D volume',
      async () => {
        const dir = tempDir('nw-analyze-3d-');
        const nii = path.join(dir, 'dwi.nii.gz');
        await writeNifti(nii, { dims: [nx, ny, nz], pixdim: [...base.pixdim], affine: base.affine, data: base.data.slice(0, nx * ny * nz) });
        const text = fslGradientText([0], [[0, 0, 0]]);
        writeFileSync(path.join(dir, 'dwi.bval'), text.bval);
        writeFileSync(path.join(dir, 'dwi.bvec'), text.bvec);
        return nii;
      },
      /expected a 4-D diffusion series/,
    ],
    [
      'a volume too small to analyse',
      () => {
        const data = new Float32Array(10 * 10 * nz * nv);
        for (let v = 0; v < nv; v++) for (let z = 0; z < nz; z++) for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) data[((v * nz + z) * 10 + y) * 10 + x] = base.data[((v * nz + z) * ny + y + 19) * nx + x + 19]!;
        return writeSeries({ ...base, dims: [10, 10, nz, nv], data }, 'small');
      },
      /too small to analyse: 10 × 10 voxels in plane, at least 16 × 16/,
    ],
    ['fewer than 6 directions', () => writeSeries({ ...base, bvecs: base.bvecs.map((v, i) => (base.bvals[i]! > 50 ? base.bvecs[2 + (i % 4)]! : v)) }, 'dirs'), /4 distinct diffusion directions; a diffusion tensor needs at least 6/],
    ['no brain voxels (an empty scan)', () => writeSeries({ ...base, data: new Float32Array(base.data.length) }, 'empty'), /no brain voxels: the b = 0 volumes hold no signal/],
    [
      'NaNs in the data',
      () => {
        const data = Float32Array.from(base.data);
        data[3 + 4 * nx + 5 * nx * ny + 2 * nx * ny * nz] = Number.NaN;
        data[100] = Number.NaN;
        return writeSeries({ ...base, data }, 'nan');
      },
      /2 values that are not numbers \(NaN or infinite\), the first at voxel \[4, 2, 0\] of volume 1/,
    ],
  ];

  for (const [name, make, reason] of cases) {
    it(`refuses ${name}`, async () => {
      const input = await make();
      const out = path.join(tempDir('nw-analyze-bad-'), 'out');
      const run = await cli('analyze', input, '--out', out, '--json', '--model', model.dir);
      expect(run.status, run.stderr).toBe(1);
      expect(run.stderr).toMatch(reason);
      expect(run.stderr).toMatch(/^neuroward: analyze: /m);
      expect(run.stderr).not.toMatch(/\n\s+at /); // a reason, not a stack trace
      expect(run.stdout).toBe('');
      expectNothingWritten(out);
    }, 120_000);
  }

  it('refuses a corrupt model file and a missing model, naming the file', async () => {
    const input = await writeSeries(base, 'model');
    const broken = await savedTestModel(12);
    const weights = path.join(broken.dir, MODEL_FILES.weights);
    const bytes = readFileSync(weights);
    bytes[10] = bytes[10]! ^ 0xff;
    writeFileSync(weights, bytes);
    const out = path.join(tempDir('nw-analyze-model-'), 'out');
    const corrupt = await cli('analyze', input, '--out', out, '--model', broken.dir);
    expect(corrupt.status, corrupt.stderr).toBe(1);
    expect(corrupt.stderr).toMatch(/weights\.bin is corrupt or was replaced: its SHA-256 is [0-9a-f]{64}/);
    const missing = await cli('analyze', input, '--out', out, '--model', path.join(broken.dir, 'nowhere'));
    expect(missing.status, missing.stderr).toBe(1);
    expect(missing.stderr).toMatch(/the AI model is missing: manifest .*nowhere.*manifest\.json does not exist/);
    expectNothingWritten(out);
  }, 120_000);

  it('exits 2 for usage errors', async () => {
    const noOut = await cli('analyze', 'x.nii.gz');
    expect(noOut.status).toBe(2);
    expect(noOut.stderr).toMatch(/needs --out DIR/);
    const badBackend = await cli('analyze', 'x.nii.gz', '--out', tempDir('nw-analyze-usage-'), '--backend', 'tpu');
    expect(badBackend.status).toBe(2);
    expect(badBackend.stderr).toMatch(/--backend is one of tfjs-node-gpu, webgpu, tfjs-node, wasm, cpu/);
  });
});
