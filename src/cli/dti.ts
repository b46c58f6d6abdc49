/**
 * `neuroward dti info` and `neuroward dti fit`: the imaging engine from the command line, on the
 * same readers and fit as the app. Outputs appear all at once or not at all.
 */
import { mkdir, rename, rm, stat, writeFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { diffusionContrast, type DiffusionContrast } from '../main/imaging/contrast.js';
import type { ImagingEngines } from '../main/imaging/imaging-service.js';
import { writeNifti } from '../main/imaging/nifti.js';
import { studyWarnings, summarise } from '../main/imaging/studies-repo.js';
import { deinterleave3 } from '../main/imaging/tensor/index.js';
import { ImagingInputError, type DwiSeries } from '../main/imaging/types.js';

const NIFTI = /\.nii(\.gz)?$/i;

export interface DtiSource {
  input: string;
  bval?: string | undefined;
  bvec?: string | undefined;
  series?: string | undefined;
}

/**
 * Progress of a run: on a terminal, one line per stage rewritten in place at every 1 %; anywhere else
 * (a log file, a pipe, CI) a new line at each 10 % step of a stage, so a log gets at most 11 per stage.
 */
export class ProgressLines {
  private stage = '';
  private last = -1;
  private open = false;

  constructor(
    private readonly log: (line: string) => void,
    /** The terminal to rewrite a line on; null when the output is not one. */
    private readonly terminal: { write: (text: string) => void } | null,
  ) {}

  report(stage: string, fraction: number): void {
    const step = this.terminal ? 1 : 10;
    const pct = Math.floor(Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0)) * 100);
    const bucket = Math.floor(pct / step) * step;
    if (stage === this.stage && bucket <= this.last) return;
    if (stage !== this.stage) this.end();
    this.stage = stage;
    this.last = bucket;
    if (this.terminal) {
      this.terminal.write(`\r${stage} ${bucket}%`);
      this.open = true;
    } else this.log(`${stage} ${bucket}%`);
  }

  /** Ends the line being rewritten (before other output). */
  end(): void {
    if (!this.open) return;
    this.terminal?.write('\n');
    this.open = false;
  }
}

const STAGE_NAMES: Record<string, string> = { reading: 'reading', mask: 'brain mask', fit: 'fitting' };

/** The contrast check in the words of `dti info` and `dti fit`. */
function contrastLine(contrast: DiffusionContrast): string {
  const drop = contrast.attenuation ? `mean signal drop ${(contrast.attenuation.min * 100).toFixed(1)}–${(contrast.attenuation.max * 100).toFixed(1)} %` : '';
  if (contrast.status === 'present') return `diffusion contrast: yes (${drop} inside the brain mask over ${contrast.decisiveVolumes} diffusion-weighted volumes)`;
  return `diffusion contrast: ${contrast.status === 'absent' ? 'NONE' : contrast.status === 'partial' ? 'PARTIAL' : 'not checked'}: ${contrast.message}`;
}

async function readSeries(engines: ImagingEngines, source: DtiSource, progress?: ProgressLines): Promise<DwiSeries> {
  const info = await stat(source.input).catch(() => null);
  if (!info) throw new ImagingInputError(`${source.input} does not exist.`, source.input);
  if (info.isFile() && NIFTI.test(source.input)) {
    const base = source.input.replace(NIFTI, '');
    return engines.readNiftiDwi(source.input, source.bval ?? `${base}.bval`, source.bvec ?? `${base}.bvec`);
  }
  return engines.readDicomDwi(source.input, {
    seriesInstanceUid: source.series,
    onProgress: progress ? (p) => progress.report(STAGE_NAMES[p.stage] ?? p.stage, p.fraction) : undefined,
  });
}

export async function dtiInfo(engines: ImagingEngines, source: DtiSource, json: boolean): Promise<string> {
  const info = await stat(source.input).catch(() => null);
  if (!info) throw new ImagingInputError(`${source.input} does not exist.`, source.input);
  if (info.isDirectory() && !source.series) {
    const all = await engines.scanDicomFolder(source.input);
    if (all.length !== 1) {
      if (json) return JSON.stringify({ series: all }, null, 2);
      if (all.length === 0) throw new ImagingInputError(`No DICOM series found in ${source.input}.`, source.input);
      const lines = [`${all.length} series in ${source.input} (choose one with --series UID):`];
      for (const s of all) {
        lines.push(
          `  #${s.seriesNumber ?? '?'} ${s.seriesDescription || '(no description)'} — ${s.manufacturer}, ${s.layout}, ${s.dims.join('×')} × ${s.volumes} volumes, ` +
            `b = ${[...new Set(s.bvals)].join('/')}${s.isDiffusion ? '' : ' (not diffusion)'}\n    ${s.seriesInstanceUid}`,
        );
      }
      return lines.join('\n');
    }
    source = { ...source, series: all[0]!.seriesInstanceUid };
  }
  const series = await readSeries(engines, source);
  const [nx, ny, nz, nv] = series.dims;
  const contrast = diffusionContrast(series);
  const summary = {
    source: series.source.kind,
    layout: series.source.layout ?? null,
    manufacturer: series.source.manufacturer ?? null,
    seriesDescription: series.source.seriesDescription ?? null,
    seriesInstanceUid: series.source.seriesInstanceUid ?? null,
    files: series.source.files.length,
    dims: [nx, ny, nz],
    volumes: nv,
    voxelSizeMm: series.pixdim,
    bvals: series.bvals,
    bvecs: series.bvecs,
    diffusionContrast: contrast,
    warnings: studyWarnings(contrast),
  };
  if (json) return JSON.stringify(summary, null, 2);
  const fmt = (v: number) => (Math.abs(v) < 5e-7 ? '0' : v.toFixed(6));
  return [
    `${summary.seriesDescription ?? path.basename(source.input)} (${summary.manufacturer ?? 'unknown vendor'}, ${summary.source}${summary.layout ? `, ${summary.layout}` : ''}, ${summary.files} files)`,
    `dimensions: ${nx} × ${ny} × ${nz} voxels × ${nv} volumes; voxel ${series.pixdim.map((d) => d.toFixed(3)).join(' × ')} mm`,
    `b-values:   ${series.bvals.join(' ')}`,
    contrastLine(contrast),
    'b-vectors (image frame, FSL convention):',
    ...series.bvecs.map((v, i) => `  ${String(i).padStart(3)}  b=${String(series.bvals[i]).padEnd(5)} ${v.map(fmt).join('  ')}`),
  ].join('\n');
}

/**
 * `terminal`: where progress is rewritten in place when the output is a terminal (stderr); without one,
 * progress comes as `log` lines every 10 %.
 */
export async function dtiFit(
  engines: ImagingEngines,
  source: DtiSource,
  out: string,
  options: { mask: boolean; log: (line: string) => void; terminal?: { write: (text: string) => void } | null },
): Promise<Record<string, unknown>> {
  const progress = new ProgressLines(options.log, options.terminal ?? null);
  const series = await readSeries(engines, source, progress);
  const started = performance.now();
  const maps = await engines.fitTensors(series, {
    mask: options.mask ? 'otsu' : 'none',
    onProgress: (p) => progress.report(STAGE_NAMES[p.stage] ?? p.stage, p.fraction),
  });
  const fitSeconds = (performance.now() - started) / 1000;
  progress.end();
  const contrast = diffusionContrast(series, options.mask ? maps.mask : null);
  const warnings = studyWarnings(contrast);
  for (const warning of warnings) options.log(`warning: ${warning}`);

  // Everything is written into a hidden folder next to the outputs, then moved in: no half-written result.
  await mkdir(out, { recursive: true });
  const partial = path.join(out, `.partial-${process.pid}`);
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial);
  try {
    const base = { dims: maps.dims, pixdim: maps.pixdim, affine: maps.affine };
    const voxels = maps.dims[0] * maps.dims[1] * maps.dims[2];
    const outputs: [string, Float32Array | Uint8Array, number][] = [
      ['fa', maps.fa, 1],
      ['md', maps.md, 1],
      ['ad', maps.ad, 1],
      ['rd', maps.rd, 1],
      // NIfTI stores a vector map frame after frame; the fit keeps x,y,z together per voxel.
      ['v1', deinterleave3(maps.v1, voxels), 3],
      ['colour-fa', deinterleave3(maps.colourFa, voxels), 3],
      ['mask', maps.mask, 1],
    ];
    for (const [name, data, components] of outputs) {
      await writeNifti(path.join(partial, `${name}.nii.gz`), {
        ...base,
        dims: components === 3 ? [...maps.dims, 3] : maps.dims,
        data,
        description: `NeuroWard DTI ${name}`,
      });
    }
    const summary = {
      source: path.resolve(source.input),
      seriesDescription: series.source.seriesDescription ?? null,
      dims: series.dims,
      voxelSizeMm: series.pixdim,
      bvals: series.bvals,
      masked: options.mask,
      fitSeconds: Math.round(fitSeconds * 1000) / 1000,
      voxelsPerSecond: Math.round((maps.dims[0] * maps.dims[1] * maps.dims[2]) / fitSeconds),
      ...summarise(maps, options.mask),
      diffusionContrast: contrast,
      warnings,
      outputs: outputs.map(([name]) => `${name}.nii.gz`),
    };
    await writeFile(path.join(partial, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    // summary.json moves last: its presence says the set is complete.
    const files = (await readdir(partial)).sort((a, b) => Number(a === 'summary.json') - Number(b === 'summary.json'));
    for (const file of files) await rename(path.join(partial, file), path.join(out, file));
    return summary;
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}
