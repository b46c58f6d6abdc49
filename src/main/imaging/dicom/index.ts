/**
 * DICOM diffusion reader: finds the series in a folder and reads one diffusion series into a DwiSeries
 * whose voxels, affine, b-values and b-vectors match what dcm2niix writes for the same files.
 *
 * Layouts: classic (one file per slice per volume), enhanced multi-frame MR, Siemens mosaic, UIH grid (as 'mosaic').
 *
 * The work is synchronous (`…Sync`): a series of thousands of small files reads several times faster with
 * one blocking read per file than through the promise API's open/stat/read/close round trips, so the app
 * runs these on its imaging-io worker thread (../io.worker.ts) and the CLI in its own thread. The promise
 * functions below are the same work for callers that do not care which thread it blocks.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { ImagingInputError, type DwiSeries, type ProgressReporter, type SeriesSummary } from '../types.js';
import { planSeries, type SeriesPlan } from './assemble.js';
import { diffusionTable, isDiffusionPlan, roundBval, type DiffusionTable } from './diffusion.js';
import { fileHeader, UnusableFileError, type FileHeader } from './header.js';
import { DicomParseError, parseDicom } from './parser.js';
import { copySlices, type SliceCopy } from './pixels.js';
import { dicomPatient } from '../dicom-patient.js';

/** A file that looked like DICOM but could not be read. */
export interface DicomFileProblem {
  file: string;
  reason: string;
}

/** A series summary plus what is known to be wrong with it (reading it will fail with that reason). */
export interface DicomSeriesSummary extends SeriesSummary {
  /** Non-empty if the series cannot be read as a diffusion series; the first entry is the main reason. */
  problems: DicomFileProblem[];
}

export interface DicomScanResult {
  series: DicomSeriesSummary[];
  /** DICOM files that are truncated or corrupt (not attributable to a usable series). */
  problems: DicomFileProblem[];
  /** DICOM files that are valid but not usable images here (DICOMDIR, reports, unsupported layouts), with why. */
  skipped: DicomFileProblem[];
}

export interface ReadDicomOptions {
  /** Which series to read when the folder (or file list) holds several. */
  seriesInstanceUid?: string;
  onProgress?: ProgressReporter;
}

const HEADER_SHARE = 0.25;

/** Report progress every this many files: about 200 reports per pass, whatever the series' size. */
function progressStep(files: number): number {
  return Math.max(1, Math.floor(files / 200));
}

function walk(dir: string, seen = new Set<string>()): string[] {
  const files: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new ImagingInputError(`Cannot read the folder ${dir}: ${(e as Error).message}`, dir);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (seen.has(full)) continue;
      seen.add(full);
      files.push(...walk(full, seen));
    } else if (entry.isFile() || entry.isSymbolicLink()) {
      files.push(full);
    }
  }
  return files;
}

type LoadResult = { header: FileHeader } | { problem: DicomFileProblem } | { skipped: DicomFileProblem } | { notDicom: DicomFileProblem };

/** The whole file; null when it is not a regular file (checked before opening: opening a FIFO would block). */
function readWholeFile(file: string): Buffer | null {
  if (!statSync(file).isFile()) return null;
  const fd = openSync(file, 'r');
  try {
    const info: Stats = fstatSync(fd);
    if (!info.isFile()) return null;
    const buf = Buffer.allocUnsafe(info.size);
    let filled = 0;
    while (filled < buf.length) {
      const n = readSync(fd, buf, filled, buf.length - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    // A file that shrank while it was read: what is there (the parser reports it as truncated).
    return filled === buf.length ? buf : buf.subarray(0, filled);
  } finally {
    closeSync(fd);
  }
}

function loadHeader(file: string): LoadResult {
  let buf: Buffer | null;
  try {
    buf = readWholeFile(file);
  } catch (e) {
    return { problem: { file, reason: `cannot be read: ${(e as Error).message}` } };
  }
  if (!buf) return { notDicom: { file, reason: 'not a regular file' } };
  let parsed;
  try {
    parsed = parseDicom(buf);
  } catch (e) {
    if (e instanceof DicomParseError) {
      if (e.kind === 'not-dicom') return { notDicom: { file, reason: e.message } };
      return { problem: { file, reason: e.message } };
    }
    return { problem: { file, reason: `cannot be parsed: ${(e as Error).message}` } };
  }
  try {
    return { header: fileHeader(file, buf.length, parsed) };
  } catch (e) {
    if (e instanceof UnusableFileError) {
      if (e.kind === 'corrupt') return { problem: { file, reason: e.message } };
      return { skipped: { file, reason: e.message } };
    }
    return { problem: { file, reason: `cannot be interpreted: ${(e as Error).message}` } };
  }
}

function seriesKey(h: FileHeader): string {
  return h.seriesInstanceUid || `(no SeriesInstanceUID) ${path.dirname(h.file)}`;
}

function groupSeries(headers: FileHeader[]): Map<string, FileHeader[]> {
  const groups = new Map<string, FileHeader[]>();
  for (const h of headers) {
    const k = seriesKey(h);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(h);
  }
  return groups;
}

function summarize(headers: FileHeader[]): DicomSeriesSummary {
  const first = headers[0]!;
  const problems: DicomFileProblem[] = [];
  for (const h of headers) if (h.unsupported) problems.push({ file: h.file, reason: h.unsupported });
  let plan: SeriesPlan | null = null;
  try {
    plan = planSeries(headers);
  } catch (e) {
    problems.push({ file: e instanceof ImagingInputError ? (e.file ?? first.file) : first.file, reason: (e as Error).message });
  }
  const base = {
    seriesInstanceUid: first.seriesInstanceUid,
    seriesNumber: first.seriesNumber,
    seriesDescription: first.seriesDescription,
    manufacturer: first.manufacturer,
    files: (plan?.files ?? headers.map((h) => h.file)).slice(),
    patient: dicomPatient(first),
  };
  if (!plan) {
    const bs = headers.flatMap((h) => h.frames.map((f) => f.diffusion.b)).filter((b): b is number => b !== null);
    const images = headers.reduce((n, h) => n + h.frames.length, 0);
    return {
      ...base,
      layout: first.layout,
      volumes: first.layout === 'mosaic' ? headers.length : images,
      dims: first.layout === 'mosaic' ? [first.columns, first.rows, first.mosaic?.slices ?? 1] : [first.columns, first.rows, 1],
      bvals: [...new Set(bs.map(roundBval))],
      isDiffusion: bs.some((b) => b > 0),
      problems,
    };
  }
  let table: DiffusionTable | null = null;
  const isDiffusion = isDiffusionPlan(plan);
  if (isDiffusion) {
    try {
      table = diffusionTable(plan);
    } catch (e) {
      problems.push({ file: e instanceof ImagingInputError ? (e.file ?? first.file) : first.file, reason: (e as Error).message });
    }
  }
  return {
    ...base,
    layout: plan.layout,
    volumes: table ? table.keep.length : plan.volumes.length,
    dims: [plan.dims[0], plan.dims[1], plan.dims[2]],
    bvals: table ? table.bvals : plan.volumes.map((v) => roundBval(v.diffusion.b ?? 0)),
    isDiffusion,
    problems,
  };
}

function sortSummaries(list: DicomSeriesSummary[]): DicomSeriesSummary[] {
  return list.sort(
    (a, b) =>
      (a.seriesNumber ?? Number.MAX_SAFE_INTEGER) - (b.seriesNumber ?? Number.MAX_SAFE_INTEGER) ||
      a.seriesDescription.localeCompare(b.seriesDescription) ||
      a.seriesInstanceUid.localeCompare(b.seriesInstanceUid),
  );
}

function scanFiles(files: string[], onProgress?: ProgressReporter): { headers: FileHeader[]; problems: DicomFileProblem[]; skipped: DicomFileProblem[]; notDicom: DicomFileProblem[] } {
  const headers: FileHeader[] = [];
  const problems: DicomFileProblem[] = [];
  const skipped: DicomFileProblem[] = [];
  const notDicom: DicomFileProblem[] = [];
  const every = progressStep(files.length);
  for (let done = 1; done <= files.length; done++) {
    const r = loadHeader(files[done - 1]!);
    if (done % every === 0 || done === files.length) onProgress?.({ stage: 'reading', fraction: done / Math.max(1, files.length), message: `DICOM headers ${done}/${files.length}` });
    if ('header' in r) headers.push(r.header);
    else if ('problem' in r) problems.push(r.problem);
    else if ('skipped' in r) skipped.push(r.skipped);
    else notDicom.push(r.notDicom);
  }
  return { headers, problems, skipped, notDicom };
}

interface SeriesEntry {
  summary: DicomSeriesSummary;
  headers: FileHeader[];
}

function seriesEntries(headers: FileHeader[]): SeriesEntry[] {
  const entries = [...groupSeries(headers).values()].map((h) => ({ summary: summarize(h), headers: h }));
  const order = sortSummaries(entries.map((e) => e.summary));
  return order.map((summary) => entries.find((e) => e.summary === summary)!);
}

function statOrNull(file: string): Stats | null {
  try {
    return statSync(file);
  } catch {
    return null;
  }
}

function scanFolder(dir: string, onProgress?: ProgressReporter): { entries: SeriesEntry[]; problems: DicomFileProblem[]; skipped: DicomFileProblem[] } {
  const info = statOrNull(dir);
  if (!info) throw new ImagingInputError(`${dir} does not exist.`, dir);
  if (!info.isDirectory()) throw new ImagingInputError(`${dir} is not a folder.`, dir);
  const files = walk(dir);
  const { headers, problems, skipped } = scanFiles(files, onProgress);
  return { entries: seriesEntries(headers), problems, skipped };
}

/**
 * Scan a folder recursively: every DICOM series in it, summarised from the headers. Non-DICOM files are
 * ignored; truncated or corrupt DICOM files are returned in `problems` (nothing is thrown for them).
 */
export function scanDicomFolderDetailedSync(dir: string, onProgress?: ProgressReporter): DicomScanResult {
  const { entries, problems, skipped } = scanFolder(dir, onProgress);
  return { series: entries.map((e) => e.summary), problems, skipped };
}

export async function scanDicomFolderDetailed(dir: string, onProgress?: ProgressReporter): Promise<DicomScanResult> {
  return scanDicomFolderDetailedSync(dir, onProgress);
}

function problemsMessage(problems: DicomFileProblem[]): string {
  const head = problems
    .slice(0, 5)
    .map((p) => `${p.file}: ${p.reason}`)
    .join('; ');
  return problems.length > 5 ? `${head}; and ${problems.length - 5} more` : head;
}

/**
 * The DICOM series in a folder (recursively). Non-DICOM files are skipped silently; a file that starts as
 * DICOM but is truncated or corrupt makes the scan fail with an ImagingInputError naming it.
 */
export function scanDicomFolderSync(dir: string): SeriesSummary[] {
  const result = scanDicomFolderDetailedSync(dir);
  if (result.problems.length > 0) {
    throw new ImagingInputError(`Unreadable DICOM file${result.problems.length > 1 ? 's' : ''} in ${dir}: ${problemsMessage(result.problems)}`, result.problems[0]!.file);
  }
  return result.series.map(({ problems: _problems, ...summary }) => summary);
}

export async function scanDicomFolder(dir: string): Promise<SeriesSummary[]> {
  return scanDicomFolderSync(dir);
}

function describeSeries(s: DicomSeriesSummary): string {
  return `#${s.seriesNumber ?? '?'} "${s.seriesDescription}" (${s.manufacturer || 'unknown vendor'}, ${s.layout}, ${s.files.length} files${s.isDiffusion ? ', diffusion' : ''}) UID ${s.seriesInstanceUid}`;
}

/**
 * Read one diffusion series into a DwiSeries.
 * `input`: a folder (scanned recursively), a single file, or an explicit list of files.
 */
export async function readDicomDwi(input: string | string[], options: ReadDicomOptions = {}): Promise<DwiSeries> {
  return readDicomDwiSync(input, options);
}

export function readDicomDwiSync(input: string | string[], options: ReadDicomOptions = {}): DwiSeries {
  try {
    return readDicomDwiUnguarded(input, options);
  } catch (e) {
    if (e instanceof ImagingInputError) throw e;
    // Anything else is still bad input to the user (a file we could not make sense of): say so, never crash.
    const error = new ImagingInputError(`Cannot read the DICOM series from ${Array.isArray(input) ? 'the given files' : input}: ${(e as Error).message}`, null);
    (error as Error & { cause?: unknown }).cause = e;
    throw error;
  }
}

function readDicomDwiUnguarded(input: string | string[], options: ReadDicomOptions): DwiSeries {
  const onProgress = options.onProgress;
  let headers: FileHeader[];
  if (typeof input === 'string' && statOrNull(input)?.isDirectory()) {
    const scan = scanFolder(input, onProgress ? (p) => onProgress({ ...p, fraction: p.fraction * HEADER_SHARE }) : undefined);
    if (scan.problems.length > 0)
      throw new ImagingInputError(`Unreadable DICOM file${scan.problems.length > 1 ? 's' : ''} in ${input}: ${problemsMessage(scan.problems)}`, scan.problems[0]!.file);
    headers = chooseSeries(scan.entries, options.seriesInstanceUid, input);
  } else {
    const files = typeof input === 'string' ? [input] : input;
    if (files.length === 0) throw new ImagingInputError('No files given.', null);
    for (const f of files) {
      const info = statOrNull(f);
      if (!info) throw new ImagingInputError(`${f} does not exist.`, f);
      if (!info.isFile()) throw new ImagingInputError(`${f} is not a file.`, f);
    }
    const scan = scanFiles(files, onProgress ? (p) => onProgress({ ...p, fraction: p.fraction * HEADER_SHARE }) : undefined);
    const bad = scan.notDicom[0] ?? scan.problems[0] ?? scan.skipped[0];
    if (bad) {
      const reason = scan.notDicom[0] ? 'is not a DICOM file' : bad.reason.startsWith('truncated') ? `is a truncated DICOM file (${bad.reason})` : `cannot be used: ${bad.reason}`;
      throw new ImagingInputError(`${bad.file} ${reason}.`, bad.file);
    }
    headers = chooseSeries(seriesEntries(scan.headers), options.seriesInstanceUid, 'the given files');
  }
  return readSeries(headers, onProgress);
}

function chooseSeries(entries: SeriesEntry[], uid: string | undefined, where: string): FileHeader[] {
  if (entries.length === 0) throw new ImagingInputError(`No DICOM images found in ${where}.`, null);
  const list = entries.map((e) => describeSeries(e.summary)).join('; ');
  if (uid !== undefined) {
    const chosen = entries.find((e) => e.summary.seriesInstanceUid === uid);
    if (!chosen) throw new ImagingInputError(`Series ${uid} is not in ${where}. Available: ${list}`, null);
    return chosen.headers;
  }
  if (entries.length === 1) return entries[0]!.headers;
  throw new ImagingInputError(`${where} holds ${entries.length} DICOM series; choose one: ${list}`, null);
}

function readSeries(headers: FileHeader[], onProgress?: ProgressReporter): DwiSeries {
  const unsupported = headers.find((h) => h.unsupported);
  if (unsupported) throw new ImagingInputError(`${unsupported.file}: ${unsupported.unsupported}.`, unsupported.file);
  const plan = planSeries(headers);
  const table = diffusionTable(plan);
  const [nx, ny, nz] = plan.dims;
  const nv = table.keep.length;
  const sliceSize = nx * ny;
  // On shared memory: the tensor fit's workers read it there, and a worker thread that read it hands it over without a copy.
  const data = new Float32Array(new SharedArrayBuffer(sliceSize * nz * nv * Float32Array.BYTES_PER_ELEMENT));
  const tilesPerRow = plan.layout === 'mosaic' ? Math.ceil(Math.sqrt(plan.first.mosaic!.slices)) : 1;

  // Which slices each file contributes, and where they go.
  const perFile = new Map<FileHeader, SliceCopy[]>();
  table.keep.forEach((volIndex, v) => {
    plan.volumes[volIndex]!.slices.forEach((s, k) => {
      let list = perFile.get(s.header);
      if (!list) perFile.set(s.header, (list = []));
      list.push({ frame: s.frame.frame, tile: s.tile, tilesPerRow, slope: s.frame.slope, intercept: s.frame.intercept, outOffset: (v * nz + k) * sliceSize });
    });
  });
  const work = [...perFile.entries()];
  const every = progressStep(work.length);
  work.forEach(([header, copies], i) => {
    let buf: Buffer | null;
    try {
      buf = readWholeFile(header.file);
    } catch (e) {
      throw new ImagingInputError(`${header.file} cannot be read: ${(e as Error).message}`, header.file);
    }
    if (!buf || buf.length !== header.fileSize) throw new ImagingInputError(`${header.file} changed while it was being read.`, header.file);
    if (header.deflated) buf = parseDicom(buf).dataset.buffer;
    copySlices(buf, header, copies, data, nx, ny);
    const done = i + 1;
    if (done % every === 0 || done === work.length) onProgress?.({ stage: 'reading', fraction: HEADER_SHARE + ((1 - HEADER_SHARE) * done) / Math.max(1, work.length), message: `DICOM pixels ${done}/${work.length}` });
  });
  const first = plan.first;
  const patient = dicomPatient(first);
  return {
    dims: [nx, ny, nz, nv],
    data,
    pixdim: plan.pixdim,
    affine: plan.affine,
    bvals: table.bvals,
    bvecs: table.bvecs,
    source: {
      kind: 'dicom',
      files: plan.files,
      seriesInstanceUid: first.seriesInstanceUid,
      seriesDescription: first.seriesDescription,
      manufacturer: first.manufacturer,
      layout: plan.layout,
      patientName: first.patientName ?? undefined,
      patientId: first.patientId ?? undefined,
      studyDate: first.studyDate ?? undefined,
      ...(patient ? { patient } : {}),
    },
  };
}
