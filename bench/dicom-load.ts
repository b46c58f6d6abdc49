/**
 * DICOM load benchmark: NeuroWard's reader (whole series, voxels included) against dcm2niix converting the
 * same files to uncompressed NIfTI, in the same run, on the shared scanner data and on synthetic classic
 * series this bench writes with pydicom (bench/write-dicom-series.py), one of them ≥ 5,000 files.
 * Run with `node bench/dicom-load.mjs` (see bench/README.md). Prints figures; never fails on a slow machine.
 *
 * Per series:
 * - dcm2niix: `dcm2niix -z n -o TMP DIR`, the whole process, best of --repeats;
 * - in-process: readDicomDwiSync(DIR) in this process (what the app's imaging worker and the CLI run),
 *   the first read (cold: the reader's code not yet compiled, as in a new worker) and the best of --repeats;
 * - CLI: `neuroward dti info DIR --json`, the whole process (start, read, contrast check), best of --repeats;
 * - agreement: the voxels against dcm2niix's NIfTI (max |Δ| after its scl_slope/scl_inter).
 * And `neuroward --version` as the CLI's start-up, best of 5.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDicomDwiSync } from '../src/main/imaging/dicom/index.js';
import { readNiftiDwi } from '../src/main/imaging/fsl-gradients.js';
import { appRoot } from '../src/main/workers/locate.js';

const PYTHON = '/usr/bin/python3';
// The bundle runs from build/bench-*: the project is the nearest folder above with a package.json.
const root = appRoot(path.dirname(fileURLToPath(import.meta.url)))!;
const shared = process.env.NEUROWARD_SHARED_DATA ?? path.resolve(root, '..', 'shared', 'data');
const cli = path.join(root, 'dist', 'cli', 'neuroward.js');
const args = process.argv.slice(2);
const repeats = Number(args.find((a) => a.startsWith('--repeats='))?.slice(10) ?? 3);
// 96×96×40 slices per volume: 130 volumes = 5,200 files, 102 MB.
const largeVolumes = Number(args.find((a) => a.startsWith('--large-volumes='))?.slice(16) ?? 130);
const keep = args.includes('--keep');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(cmd: string, argv: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => resolve({ code: -1, stdout, stderr: String(err), seconds: NaN }));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
  });
}

async function best(times: number, once: () => Promise<number>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < times; i++) min = Math.min(min, await once());
  return min;
}

async function folderBytes(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files += 1;
    bytes += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return { files, bytes };
}

interface Row {
  name: string;
  files: number;
  mb: number;
  dims: string;
  dcm2niix: number;
  first: number;
  warm: number;
  cli: number;
  maxDiff: number | null;
}

async function measure(name: string, dir: string, scratch: string): Promise<Row> {
  const { files, bytes } = await folderBytes(dir);
  // dcm2niix, whole process, into a fresh folder each time.
  let out = '';
  const dcm2niix = await best(repeats, async () => {
    out = await mkdtemp(path.join(scratch, 'd2n-'));
    const r = await run('dcm2niix', ['-z', 'n', '-o', out, dir]);
    if (r.code !== 0) throw new Error(`dcm2niix failed on ${dir}: ${r.stderr || r.stdout}`);
    return r.seconds;
  });
  // In-process.
  let t = performance.now();
  let series = readDicomDwiSync(dir);
  const first = (performance.now() - t) / 1000;
  const warm = await best(repeats, async () => {
    t = performance.now();
    series = readDicomDwiSync(dir);
    return (performance.now() - t) / 1000;
  });
  // The CLI, whole process.
  const cliSeconds = await best(repeats, async () => {
    const r = await run(process.execPath, [cli, 'dti', 'info', dir, '--json']);
    if (r.code !== 0) throw new Error(`neuroward dti info failed on ${dir}: ${r.stderr}`);
    return r.seconds;
  });
  // Agreement with dcm2niix's conversion (one NIfTI with its .bval/.bvec expected).
  let maxDiff: number | null = null;
  const niis = readdirSync(out).filter((f) => f.endsWith('.nii'));
  if (niis.length === 1) {
    const base = path.join(out, niis[0]!.slice(0, -4));
    if (existsSync(`${base}.bval`)) {
      const ref = await readNiftiDwi(`${base}.nii`, `${base}.bval`, `${base}.bvec`);
      if (ref.data.length === series.data.length) {
        maxDiff = 0;
        for (let i = 0; i < ref.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ref.data[i]! - series.data[i]!));
      }
    }
  }
  return { name, files, mb: bytes / 1e6, dims: series.dims.join('×'), dcm2niix, first, warm, cli: cliSeconds, maxDiff };
}

async function writeSynthetic(out: string, size: string, volumes: number, b0: number, vendor: string, seed: number): Promise<string> {
  const r = await run(PYTHON, [path.join(root, 'bench', 'write-dicom-series.py'), out, '--size', size, '--volumes', String(volumes), '--b0', String(b0), '--vendor', vendor, '--seed', String(seed)]);
  if (r.code !== 0) throw new Error(`write-dicom-series.py failed: ${r.stderr}`);
  return r.stdout.trim();
}

async function main(): Promise<void> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const scratch = await mkdtemp(path.join(tmpdir(), 'nw-dicom-load-'));
  try {
    const d2nVersion = (await run('dcm2niix', ['-v'])).stdout.split('\n').find((l) => l.includes('v1.'))?.trim() ?? '?';
    console.log(`DICOM load benchmark — NeuroWard reader vs ${d2nVersion}`);
    console.log(`machine: ${availableParallelism()} cores, node ${process.version}; scratch ${scratch}; best of ${repeats}`);
    const t = performance.now();
    console.log(`writing synthetic series with pydicom: ${await writeSynthetic(path.join(scratch, 'philips'), '112x112x32', 17, 1, 'philips', 2)}`);
    console.log(`writing synthetic series with pydicom: ${await writeSynthetic(path.join(scratch, 'large'), '96x96x40', largeVolumes, 10, 'siemens', 1)}`);
    console.log(`(written in ${((performance.now() - t) / 1000).toFixed(1)} s, not counted)`);

    const inputs: [string, string][] = [];
    const ge = path.join(shared, 'dwi-ge', 'In');
    if (existsSync(ge)) for (const d of readdirSync(ge).sort()) inputs.push([`GE classic ${d.slice(0, 2)}`, path.join(ge, d)]);
    const mosaic = path.join(shared, 'dwi-siemens-mosaic', 'In');
    if (existsSync(mosaic)) inputs.push(['Siemens mosaic', mosaic]);
    if (inputs.length === 0) console.log(`(no shared scanner data under ${shared})`);
    inputs.push(['Philips classic (synthetic)', path.join(scratch, 'philips')]);
    inputs.push(['large classic (synthetic)', path.join(scratch, 'large')]);

    const rows: Row[] = [];
    for (const [name, dir] of inputs) rows.push(await measure(name, dir, scratch));

    const version = await best(5, async () => (await run(process.execPath, [cli, '--version'])).seconds);
    const bare = await best(5, async () => (await run(process.execPath, ['-e', '0'])).seconds);

    const s = (v: number) => v.toFixed(3);
    const header = ['series', 'files', 'MB', 'dims', 'dcm2niix s', 'read first s', 'read best s', 'first/d2n', 'best/d2n', 'CLI dti info s', 'max |Δ|'];
    const table = rows.map((r) => [r.name, String(r.files), r.mb.toFixed(1), r.dims, s(r.dcm2niix), s(r.first), s(r.warm), `${(r.first / r.dcm2niix).toFixed(2)}×`, `${(r.warm / r.dcm2niix).toFixed(2)}×`, s(r.cli), r.maxDiff === null ? 'n/a' : r.maxDiff.toExponential(1)]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
    console.log('');
    console.log(line(header));
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const row of table) console.log(line(row));
    console.log('');
    const worstFirst = Math.max(...rows.map((r) => r.first / r.dcm2niix));
    const worstWarm = Math.max(...rows.map((r) => r.warm / r.dcm2niix));
    const largest = rows[rows.length - 1]!;
    console.log(`in-process read / dcm2niix conversion: worst ${worstWarm.toFixed(2)}× (best of ${repeats}), ${worstFirst.toFixed(2)}× (first read); largest series ${(largest.warm / largest.dcm2niix).toFixed(2)}×  goal ≤ 2×`);
    console.log(`CLI start (neuroward --version, whole process): ${s(version)} s (node -e 0: ${s(bare)} s)  goal ≤ 0.25 s`);
    console.log('("CLI dti info" also runs the diffusion-contrast check: an Otsu brain mask with a 3×3×3 median, twice.)');
  } finally {
    if (!keep) await rm(scratch, { recursive: true, force: true });
  }
}

await main();
