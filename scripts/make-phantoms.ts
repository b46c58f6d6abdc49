/**
 * `node scripts/make-phantoms.mjs --out DIR [--count N] [--seed S] [--matrix NxN] [--slices N] [--snr X]`
 *
 * Writes N brain DTI phantoms (scripts/phantom/brain-phantom.ts) with seeds S, S+1, …, one folder each
 * (`phantom-<seed>/`: dwi.nii.gz, dwi.bval, dwi.bvec, lesions.nii.gz, tissue.nii.gz, truth.json), and
 * prints one line per phantom. The same seed and settings always give the same files.
 */
import path from 'node:path';
import { makeBrainPhantom, type AcquisitionOptions } from './phantom/brain-phantom.js';
import { writeBrainPhantom } from './phantom/write-phantom.js';

const USAGE = 'usage: node scripts/make-phantoms.mjs --out DIR [--count N] [--seed S] [--matrix NxN] [--slices N] [--snr X]';

function fail(message: string): never {
  console.error(`make-phantoms: ${message}\n${USAGE}`);
  process.exit(2);
}

function parse(argv: string[]): { out: string; count: number; seed: number; acquisition: Partial<AcquisitionOptions> } {
  let out: string | null = null;
  let count = 1;
  let seed = 1;
  const acquisition: Partial<AcquisitionOptions> = {};
  for (const arg of argv) {
    const [key, value] = arg.split('=', 2) as [string, string | undefined];
    if (value === undefined || value === '') fail(`bad argument ${arg}`);
    const positive = (): number => {
      const n = Number(value);
      if (!Number.isFinite(n) || n <= 0) fail(`${key} needs a positive number, got ${value}`);
      return n;
    };
    if (key === '--out') out = path.resolve(value);
    else if (key === '--count') count = Math.round(positive());
    else if (key === '--seed') seed = Math.round(positive());
    else if (key === '--slices') acquisition.slices = Math.round(positive());
    else if (key === '--snr') acquisition.snr = positive();
    else if (key === '--matrix') {
      const m = /^(\d+)x(\d+)$/.exec(value);
      if (!m) fail(`--matrix needs NxN, got ${value}`);
      acquisition.matrix = [Number(m[1]), Number(m[2])];
    } else fail(`unknown argument ${arg}`);
  }
  if (!out) fail('--out is required');
  return { out, count, seed, acquisition };
}

const options = parse(process.argv.slice(2));
for (let i = 0; i < options.count; i++) {
  const seed = options.seed + i;
  const started = performance.now();
  const phantom = makeBrainPhantom({ seed, acquisition: options.acquisition });
  const written = await writeBrainPhantom(phantom, path.join(options.out, `phantom-${seed}`));
  const a = phantom.acquisition;
  console.log(
    `${path.relative(process.cwd(), written.dir) || written.dir}: ${phantom.series.dims.join('×')} at ${a.voxelMm.join('×')} mm, b ${a.shells.join('/')} × ${a.directions} directions + ${a.b0Count} b0, SNR ${a.snr.toFixed(1)}, ` +
      `${phantom.lesions.length} lesion(s)${phantom.lesions.length ? ` (${phantom.lesions.map((l) => `${l.volumeMl.toFixed(2)} ml`).join(', ')})` : ''}, ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}
