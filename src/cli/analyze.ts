/**
 * `neuroward analyze`: the AI second read from the command line (issue 9 item 9), on the same readers,
 * fit and pipeline as the app. Writes clusters.nii.gz and heatmap.nii.gz (the input's voxel grid) and
 * report.json (a FHIR R4 Bundle, fhir-report.ts) into --out; all three appear together or none does:
 * they are written into a hidden folder inside --out and renamed into place only when all are done.
 * Stage times and the backend go to stderr; with --json, stdout carries exactly one JSON object.
 */
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { analysisBundle } from '../main/analysis/fhir-report.js';
import { clusterSummary, heatMapPicture, regionsInMm } from '../main/analysis/read-summary.js';
import { describeBackend, type BackendName } from '../main/analysis/backends.js';
import { analyzeSeries, type AnalysisResult } from '../main/analysis/pipeline.js';
import type { ImagingEngines } from '../main/imaging/imaging-service.js';
import { writeNifti } from '../main/imaging/nifti.js';
import { ImagingInputError, type DwiSeries } from '../main/imaging/types.js';
import { FhirValidator } from '../main/fhir/validation.js';

const NIFTI = /\.nii(\.gz)?$/i;

export interface AnalyzeSource {
  input: string;
  bval?: string | undefined;
  bvec?: string | undefined;
  series?: string | undefined;
}

/** The JSON `--json` prints (issue 9 item 9's shape). */
export interface AnalyzeSummary {
  finding: 'suspected' | 'not-found';
  probability: number;
  regions: { centroidVoxel: [number, number, number]; volumeMl: number; probability: number }[];
  backend: string;
  stages: { name: string; ms: number }[];
}

export { defaultModelDir } from '../main/analysis/model/model-check.js';

async function readSeries(engines: ImagingEngines, source: AnalyzeSource): Promise<DwiSeries> {
  const info = await stat(source.input).catch(() => null);
  if (!info) throw new ImagingInputError(`${source.input} does not exist.`, source.input);
  if (info.isFile() && NIFTI.test(source.input)) {
    const base = source.input.replace(NIFTI, '');
    return engines.readNiftiDwi(source.input, source.bval ?? `${base}.bval`, source.bvec ?? `${base}.bvec`);
  }
  return engines.readDicomDwi(source.input, { seriesInstanceUid: source.series });
}

export function summaryOf(result: AnalysisResult, readMs: number): AnalyzeSummary {
  return {
    finding: result.finding.finding,
    probability: result.finding.probability,
    regions: result.finding.regions.map((r) => ({ centroidVoxel: r.centroidVoxel, volumeMl: r.volumeMl, probability: r.probability })),
    backend: result.backend.name,
    stages: [{ name: 'load', ms: readMs }, ...result.stages],
  };
}

/** The slice with the highest lesion probability (the first on ties; the middle one when none was analysed). */
export function mostSuspiciousSlice(result: Pick<AnalysisResult, 'finding' | 'maps'>): number {
  let best: { z: number; probability: number } | null = null;
  for (const s of result.finding.slices) if (!best || s.probability > best.probability) best = s;
  return best?.z ?? Math.floor(result.maps.dims[2] / 2);
}

export async function analyze(
  engines: ImagingEngines,
  source: AnalyzeSource,
  out: string,
  options: { model: string; backend?: BackendName | undefined; log: (line: string) => void },
): Promise<AnalyzeSummary> {
  const started = performance.now();
  const series = await readSeries(engines, source);
  const readMs = Math.round((performance.now() - started) * 10) / 10;
  options.log(`load ${readMs.toFixed(0)} ms (${series.dims.slice(0, 3).join('×')} × ${series.dims[3]} volumes)`);
  const result = await analyzeSeries(series, { model: options.model, backend: options.backend });
  for (const s of result.stages) options.log(`${s.name} ${s.ms.toFixed(0)} ms`);
  options.log(`backend: ${describeBackend(result.backend)}`);

  const bundle = analysisBundle(
    {
      finding: { ...result.finding, slices: result.finding.slices.length },
      regions: regionsInMm(result.finding.regions, series.affine),
      clusters: clusterSummary(result, series.pixdim),
      model: result.model,
      backend: result.backend,
    },
    { sourceLabel: path.basename(path.resolve(source.input)), heatMapPng: heatMapPicture(result.maps.fa, result.heatMap, result.maps.dims, mostSuspiciousSlice(result)) },
  );
  const validator = new FhirValidator();
  for (const entry of bundle.entry ?? []) {
    const verdict = validator.validate(entry.resource);
    if (!verdict.valid) throw new Error(`the report would not be valid FHIR R4: ${verdict.reason}`);
  }
  const bundleVerdict = validator.validate(bundle);
  if (!bundleVerdict.valid) throw new Error(`the report bundle would not be valid FHIR R4: ${bundleVerdict.reason}`);

  await mkdir(out, { recursive: true });
  const partial = path.join(out, `.partial-analyze-${process.pid}`);
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial);
  try {
    const grid = { dims: [...result.maps.dims], pixdim: [...series.pixdim], affine: series.affine };
    await writeNifti(path.join(partial, 'clusters.nii.gz'), { ...grid, data: result.clusters.labels, description: 'NeuroWard tissue clusters 1-4 (PCA+KMeans)' });
    await writeNifti(path.join(partial, 'heatmap.nii.gz'), { ...grid, data: result.heatMap, description: 'NeuroWard lesion heat map (Grad-CAM x p)' });
    await writeFile(path.join(partial, 'report.json'), `${JSON.stringify(bundle, null, 2)}\n`);
    // report.json moves last: its presence says the set is complete.
    const files = (await readdir(partial)).sort((a, b) => Number(a === 'report.json') - Number(b === 'report.json'));
    for (const file of files) await rename(path.join(partial, file), path.join(out, file));
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  return summaryOf(result, readMs);
}
