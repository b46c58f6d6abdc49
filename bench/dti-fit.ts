/**
 * DTI fit benchmark: NeuroWard's WLS tensor fit vs DIPY 1.6 WLS and MRtrix3 dwi2tensor on the same
 * synthetic series. Run with `node bench/dti-fit.mjs` (see bench/README.md). Prints figures; never fails
 * on a slow machine.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { readNiftiDwi } from '../src/main/imaging/fsl-gradients.js';
import { writeNifti } from '../src/main/imaging/nifti.js';
import { fitTensors } from '../src/main/imaging/tensor/fit.js';
import { fslGradientText, makePhantom } from '../src/main/imaging/tensor/phantom.js';

const PYTHON = '/usr/bin/python3';
const args = process.argv.slice(2);
const dimsArg = args.find((a) => a.startsWith('--dims='))?.slice(7);
const dims = (dimsArg ? dimsArg.split('x').map(Number) : [96, 96, 60]) as [number, number, number];
const workers = Number(args.find((a) => a.startsWith('--workers='))?.slice(10) ?? 2);
const repeats = Number(args.find((a) => a.startsWith('--repeats='))?.slice(10) ?? 3);
const keep = args.includes('--keep');

function run(cmd: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string; seconds: number }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => resolve({ code: -1, stdout, stderr: String(err), seconds: NaN }));
    child.on('close', (code) =>
      resolve({ code: code ?? -1, stdout, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }),
    );
  });
}

const DIPY_SCRIPT = String.raw`
import sys, time, json
import numpy as np, nibabel as nib
from dipy.core.gradients import gradient_table
from dipy.io.gradients import read_bvals_bvecs
import dipy.reconst.dti as dti
nii, bval, bvec, out = sys.argv[1:5]
data = nib.load(nii).get_fdata()
b, v = read_bvals_bvecs(bval, bvec)
gtab = gradient_table(b, v)
t0 = time.perf_counter()
fit = dti.TensorModel(gtab, fit_method='WLS').fit(data)
fa = fit.fa
md = fit.md
t1 = time.perf_counter()
np.asarray(fa, dtype='<f4').ravel(order='F').tofile(out + '_fa.f32')
np.asarray(md, dtype='<f4').ravel(order='F').tofile(out + '_md.f32')
import dipy
print(json.dumps({'seconds': t1 - t0, 'version': dipy.__version__}))
`;

async function generate(dir: string): Promise<void> {
  const { series: phantom } = makePhantom({ dims, b0: 4, directions: 64, sigma: 20, seed: 7 });
  const grad = fslGradientText(phantom.bvals, phantom.bvecs);
  await writeNifti(path.join(dir, 'dwi.nii'), { dims: phantom.dims, pixdim: [...phantom.pixdim, 1], affine: phantom.affine, data: phantom.data });
  await writeFile(path.join(dir, 'dwi.bval'), grad.bval);
  await writeFile(path.join(dir, 'dwi.bvec'), grad.bvec);
}

async function main() {
  const dir = await mkdtemp(path.join(tmpdir(), 'nw-dti-bench-'));
  try {
    const [nx, ny, nz] = dims;
    const nvox = nx * ny * nz;
    console.log(`DTI fit benchmark — ${nx}×${ny}×${nz} = ${nvox} voxels, 4 b0 + 64 directions (b=1000), unmasked`);
    console.log(`machine: ${availableParallelism()} cores, node ${process.version}; scratch ${dir}`);

    let t = performance.now();
    const nii = path.join(dir, 'dwi.nii');
    // The phantom is made in a child process, so this one starts as the app does: read, then fit
    // (its ~300 MB of generation garbage would otherwise be collected during the first fit).
    const gen = await run(process.execPath, [process.argv[1]!, `--generate-into=${dir}`, `--dims=${dims.join('x')}`]);
    if (gen.code !== 0) throw new Error(`phantom generation failed: ${gen.stderr}`);
    console.log(`phantom generated and written in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    t = performance.now();
    const series = await readNiftiDwi(nii, path.join(dir, 'dwi.bval'), path.join(dir, 'dwi.bvec'));
    const readSeconds = (performance.now() - t) / 1000;

    const times: number[] = [];
    let maps = null;
    for (let r = 0; r < repeats; r++) {
      t = performance.now();
      maps = await fitTensors(series, { mask: 'none', workers });
      times.push((performance.now() - t) / 1000);
    }
    const nwFirst = times[0]!;
    const nwBest = Math.min(...times);

    // DIPY (time only the fit, measured inside Python).
    await writeFile(path.join(dir, 'dipy_fit.py'), DIPY_SCRIPT);
    const dipy = await run(PYTHON, [path.join(dir, 'dipy_fit.py'), nii, path.join(dir, 'dwi.bval'), path.join(dir, 'dwi.bvec'), path.join(dir, 'dipy')]);
    let dipySeconds = NaN;
    let dipyVersion = '?';
    if (dipy.code === 0) {
      const out = JSON.parse(dipy.stdout.trim().split('\n').pop()!) as { seconds: number; version: string };
      dipySeconds = out.seconds;
      dipyVersion = out.version;
    } else console.log(`DIPY failed: ${dipy.stderr.slice(-500)}`);

    // MRtrix3 (the whole command: reading, fitting, writing).
    const mr = await run('dwi2tensor', ['-nthreads', '2', '-force', '-quiet', '-fslgrad', path.join(dir, 'dwi.bvec'), path.join(dir, 'dwi.bval'), nii, path.join(dir, 'dt.mif')]);
    const mrSeconds = mr.code === 0 ? mr.seconds : NaN;
    if (mr.code !== 0) console.log(`dwi2tensor failed: ${mr.stderr.slice(-500)}`);
    const mrVersion = (await run('dwi2tensor', ['-version'])).stdout.split('\n')[0]?.trim() ?? '?';

    const rate = (s: number) => (Number.isFinite(s) ? Math.round(nvox / s).toLocaleString('en-US') : 'n/a');
    const sec = (s: number) => (Number.isFinite(s) ? s.toFixed(3) : 'n/a');
    const rows: [string, number][] = [
      [`NeuroWard WLS, ${workers} workers (best of ${repeats})`, nwBest],
      [`NeuroWard WLS, ${workers} workers (first run)`, nwFirst],
      [`DIPY ${dipyVersion} TensorModel WLS (fit only)`, dipySeconds],
      [`MRtrix3 dwi2tensor -nthreads 2 (incl. IO)`, mrSeconds],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length));
    console.log('');
    console.log(`| ${'fit'.padEnd(w0)} | seconds | voxels/s   |`);
    console.log(`| ${'-'.repeat(w0)} | ------- | ---------- |`);
    for (const [name, s] of rows) console.log(`| ${name.padEnd(w0)} | ${sec(s).padStart(7)} | ${rate(s).padStart(10)} |`);
    console.log('');
    console.log(`NeuroWard/DIPY speed:   ${(dipySeconds / nwBest).toFixed(1)}× (first run ${(dipySeconds / nwFirst).toFixed(1)}×)  goal ≥ 10×`);
    console.log(`NeuroWard/MRtrix speed: ${(mrSeconds / nwBest).toFixed(1)}× (first run ${(mrSeconds / nwFirst).toFixed(1)}×)  goal ≥ 2×`);
    console.log(`(reading the series with readNiftiDwi: ${readSeconds.toFixed(2)} s, not counted; MRtrix: ${mrVersion})`);

    if (dipy.code === 0 && maps) {
      const dfa = new Float32Array((await readFile(path.join(dir, 'dipy_fa.f32'))).buffer.slice(0));
      const dmd = new Float32Array((await readFile(path.join(dir, 'dipy_md.f32'))).buffer.slice(0));
      let maxFa = 0;
      let maxMd = 0;
      for (let i = 0; i < nvox; i++) {
        maxFa = Math.max(maxFa, Math.abs(maps.fa[i]! - dfa[i]!));
        if (dmd[i]! > 0) maxMd = Math.max(maxMd, Math.abs(maps.md[i]! - dmd[i]!) / dmd[i]!);
      }
      console.log(`agreement with DIPY over all ${nvox} voxels: max |ΔFA| = ${maxFa.toExponential(2)}, max relative ΔMD = ${maxMd.toExponential(2)}`);
    }
    console.log(`NeuroWard fit times (s): ${times.map((s) => s.toFixed(3)).join(', ')}`);
  } finally {
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}

const generateInto = args.find((a) => a.startsWith('--generate-into='))?.slice(16);
if (generateInto) await generate(generateInto);
else await main();
