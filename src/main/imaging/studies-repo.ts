/** Imaging studies and their volumes in the encrypted store. */
import { randomUUID } from 'node:crypto';
import type { Db } from '../store/database.js';
import type { DiffusionContrastView, DicomPatientView, Study, VolumeData } from '../../shared/ipc.js';
import { NwError } from '../../shared/errors.js';
import type { DwiSeries, TensorMaps } from './types.js';

/** How the study came to its patient, as stored (see patient-match.ts). */
export type StoredPatientLink = NonNullable<Study['patientLink']>;

interface StudyRow {
  id: string;
  created_at: string;
  created_by: string;
  patient_id: string | null;
  description: string;
  source_kind: 'dicom' | 'nifti';
  source_path: string;
  manufacturer: string | null;
  dims_json: string;
  pixdim_json: string;
  affine_json: string;
  bvals_json: string;
  bvecs_json: string;
  masked: number;
  fit_seconds: number;
  summary_json: string;
  dicom_patient_json: string | null;
  patient_link_json: string | null;
  contrast_json: string | null;
  /** Joined from patients. */
  patient_mrn: string | null;
  patient_name: string | null;
}

/** Complete studies only: a study still being written (or left by an interrupted import) is never shown. */
const SELECT = `SELECT s.*, p.mrn AS patient_mrn, p.given_name || ' ' || p.family_name AS patient_name
  FROM imaging_studies s LEFT JOIN patients p ON p.id = s.patient_id WHERE s.complete = 1`;

/** One row of imaging_volumes: a map or a DWI volume. */
export interface StagedVolume {
  key: string;
  components: 1 | 3;
  values: Float32Array;
}

function json<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** What the reader must know before trusting the maps, from what was stored. */
export function studyWarnings(contrast: DiffusionContrastView | null): string[] {
  return contrast && (contrast.status === 'absent' || contrast.status === 'partial') && contrast.message ? [contrast.message] : [];
}

function toStudy(row: StudyRow): Study {
  const dims = JSON.parse(row.dims_json) as Study['dims'];
  const stored = JSON.parse(row.summary_json) as { maskedVoxels: number; fittedVoxels?: number; meanFa: number; meanMd: number };
  const masked = row.masked === 1;
  const contrast = json<DiffusionContrastView>(row.contrast_json);
  return {
    id: row.id,
    createdAt: row.created_at,
    createdBy: row.created_by,
    patientId: row.patient_id,
    description: row.description,
    sourceKind: row.source_kind,
    sourcePath: row.source_path,
    manufacturer: row.manufacturer,
    dims,
    pixdim: JSON.parse(row.pixdim_json) as Study['pixdim'],
    bvals: JSON.parse(row.bvals_json) as number[],
    masked,
    fitSeconds: row.fit_seconds,
    // Studies stored before fittedVoxels existed counted every voxel as "masked" in an unmasked fit.
    summary: {
      maskedVoxels: masked ? stored.maskedVoxels : null,
      fittedVoxels: stored.fittedVoxels ?? (masked ? stored.maskedVoxels : dims[0] * dims[1] * dims[2]),
      meanFa: stored.meanFa,
      meanMd: stored.meanMd,
    },
    patient: row.patient_id && typeof row.patient_mrn === 'string' ? { mrn: row.patient_mrn, name: row.patient_name ?? '' } : null,
    dicomPatient: json<DicomPatientView>(row.dicom_patient_json),
    patientLink: json<StoredPatientLink>(row.patient_link_json),
    diffusionContrast: contrast,
    warnings: studyWarnings(contrast),
  };
}

function range(values: Float32Array | Uint8Array): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return values.length ? [min, max] : [0, 0];
}

function asBlob(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/**
 * Means over the fitted voxels. `maskedVoxels` is the brain mask's size, and null for an unmasked fit
 * (there is no mask: every voxel, background included, was fitted; `fittedVoxels` says how many).
 */
export function summarise(maps: TensorMaps, masked: boolean): Study['summary'] {
  let n = 0;
  let fa = 0;
  let md = 0;
  for (let i = 0; i < maps.mask.length; i++) {
    if (!maps.mask[i]) continue;
    n += 1;
    fa += maps.fa[i]!;
    md += maps.md[i]!;
  }
  return { maskedVoxels: masked ? n : null, fittedVoxels: n, meanFa: n ? fa / n : 0, meanMd: n ? md / n : 0 };
}

export class StudiesRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  /**
   * First step of storing a study: its row, not yet complete (invisible to get, list and volume), without
   * a patient. Then `volumeChunks` → `putVolumes` (each chunk in its own transaction) and `complete` in
   * the transaction that links the patient and audits the import; `discard` if anything fails.
   */
  insertPending(input: {
    series: DwiSeries;
    maps: TensorMaps;
    createdBy: string;
    description: string;
    sourcePath: string;
    masked: boolean;
    fitSeconds: number;
    contrast?: DiffusionContrastView | null;
  }): string {
    const { series, maps } = input;
    const id = randomUUID();
    this.db
      .prepare(
        `INSERT INTO imaging_studies (id, created_at, created_by, patient_id, description, source_kind, source_path, manufacturer, dims_json, pixdim_json,
           affine_json, bvals_json, bvecs_json, masked, fit_seconds, summary_json, dicom_patient_json, patient_link_json, contrast_json, complete)
         VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, 0)`,
      )
      .run(
        id,
        this.now().toISOString(),
        input.createdBy,
        input.description,
        series.source.kind,
        input.sourcePath,
        series.source.manufacturer ?? null,
        JSON.stringify(series.dims),
        JSON.stringify(series.pixdim),
        JSON.stringify(series.affine),
        JSON.stringify(series.bvals),
        JSON.stringify(series.bvecs),
        input.masked ? 1 : 0,
        input.fitSeconds,
        JSON.stringify(summarise(maps, input.masked)),
        series.source.patient ? JSON.stringify(series.source.patient) : null,
        input.contrast ? JSON.stringify(input.contrast) : null,
      );
    return id;
  }

  /**
   * The maps and every DWI volume as rows to write, grouped into chunks of about `chunkBytes` (at least
   * one volume each), in the order the viewer needs them (maps first).
   */
  static volumeChunks(series: DwiSeries, maps: TensorMaps, chunkBytes: number): StagedVolume[][] {
    const volumes: StagedVolume[] = [
      { key: 'fa', components: 1, values: maps.fa },
      { key: 'md', components: 1, values: maps.md },
      { key: 'ad', components: 1, values: maps.ad },
      { key: 'rd', components: 1, values: maps.rd },
      { key: 'v1', components: 3, values: maps.v1 },
      { key: 'colour-fa', components: 3, values: maps.colourFa },
      { key: 'mask', components: 1, values: Float32Array.from(maps.mask) },
    ];
    const [nx, ny, nz, nv] = series.dims;
    const size = nx * ny * nz;
    for (let v = 0; v < nv; v++) volumes.push({ key: `dwi:${v}`, components: 1, values: series.data.subarray(v * size, (v + 1) * size) });
    const chunks: StagedVolume[][] = [];
    let chunk: StagedVolume[] = [];
    let bytes = 0;
    for (const volume of volumes) {
      if (chunk.length > 0 && bytes + volume.values.byteLength > chunkBytes) {
        chunks.push(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(volume);
      bytes += volume.values.byteLength;
    }
    if (chunk.length > 0) chunks.push(chunk);
    return chunks;
  }

  /** Writes volumes of a pending study. Call inside a transaction (one per chunk). */
  putVolumes(studyId: string, volumes: StagedVolume[]): void {
    const insert = this.db.prepare('INSERT INTO imaging_volumes (study_id, key, components, min, max, data) VALUES (?, ?, ?, ?, ?, ?)');
    for (const { key, components, values } of volumes) {
      if (!(values instanceof Float32Array)) throw new Error(`volume ${key} has no voxels`);
      const [min, max] = range(values);
      insert.run(studyId, key, components, min, max, asBlob(values));
    }
  }

  /** Makes a pending study visible, with its patient. Call inside the transaction that audits the import. */
  complete(studyId: string, patientId: string | null, patientLink: StoredPatientLink | null): Study {
    const done = this.db
      .prepare('UPDATE imaging_studies SET patient_id = ?, patient_link_json = ?, complete = 1 WHERE id = ? AND complete = 0')
      .run(patientId, patientLink ? JSON.stringify(patientLink) : null, studyId);
    if (done.changes !== 1) throw new Error(`study ${studyId} is not pending`);
    return this.get(studyId)!;
  }

  /** Removes a pending study and its volumes (an import that failed). */
  discard(studyId: string): void {
    this.db.prepare('DELETE FROM imaging_studies WHERE id = ? AND complete = 0').run(studyId);
  }

  /** Removes every pending study: those an interrupted import left. Returns how many. */
  discardAllPending(): number {
    return this.db.prepare('DELETE FROM imaging_studies WHERE complete = 0').run().changes;
  }

  get(id: string): Study | null {
    const row = this.db.prepare(`${SELECT} AND s.id = ?`).get(id) as StudyRow | undefined;
    return row ? toStudy(row) : null;
  }

  /** Newest first; `patientId`: that patient's studies only. */
  list(options: { limit?: number; patientId?: string | undefined } = {}): Study[] {
    const limit = options.limit ?? 50;
    const rows = options.patientId
      ? this.db.prepare(`${SELECT} AND s.patient_id = ? ORDER BY s.created_at DESC LIMIT ?`).all(options.patientId, limit)
      : this.db.prepare(`${SELECT} ORDER BY s.created_at DESC LIMIT ?`).all(limit);
    return (rows as StudyRow[]).map(toStudy);
  }

  /** Links a study that has no patient; refuses one that already has one. Call inside the transaction that audits it. */
  linkPatient(studyId: string, patientId: string, link: StoredPatientLink): Study {
    const done = this.db.prepare('UPDATE imaging_studies SET patient_id = ?, patient_link_json = ? WHERE id = ? AND patient_id IS NULL AND complete = 1').run(patientId, JSON.stringify(link), studyId);
    if (done.changes !== 1) {
      if (!this.get(studyId)) throw new NwError('not-found', 'No such study.');
      throw new NwError('conflict', 'This study already belongs to a patient.');
    }
    return this.get(studyId)!;
  }

  /**
   * The stored diffusion series of a study (every DWI volume, gradients, grid) as the readers gave it,
   * for work that needs the raw signal again (the AI read), read one volume per call of `readVolume`
   * so that a caller on the main thread can let the event loop run between them. Null when the study
   * does not exist.
   */
  seriesReader(studyId: string): { series: DwiSeries; readVolume(v: number): void } | null {
    const row = this.db.prepare(`${SELECT} AND s.id = ?`).get(studyId) as StudyRow | undefined;
    if (!row) return null;
    const study = toStudy(row);
    const [nx, ny, nz, nv] = study.dims;
    const size = nx * ny * nz;
    const data = new Float32Array(size * nv);
    const read = this.db.prepare('SELECT data FROM imaging_volumes WHERE study_id = ? AND key = ?');
    return {
      series: {
        dims: study.dims,
        data,
        pixdim: study.pixdim,
        affine: JSON.parse(row.affine_json) as DwiSeries['affine'],
        bvals: study.bvals,
        bvecs: JSON.parse(row.bvecs_json) as DwiSeries['bvecs'],
        source: { kind: study.sourceKind, files: [study.sourcePath], ...(study.manufacturer ? { manufacturer: study.manufacturer } : {}), ...(study.description ? { seriesDescription: study.description } : {}) },
      },
      readVolume(v: number) {
        const volume = read.get(studyId, `dwi:${v}`) as { data: Buffer } | undefined;
        if (!volume || volume.data.byteLength !== size * 4) throw new NwError('store-corrupted', `Study ${studyId} is missing DWI volume ${v} (or it has the wrong size).`);
        // Copied out of the row's buffer: its offset need not be a multiple of 4.
        data.set(new Float32Array(volume.data.buffer.slice(volume.data.byteOffset, volume.data.byteOffset + volume.data.byteLength)), v * size);
      },
    };
  }

  /** Removes a study's volumes whose key starts with `prefix` (e.g. what a failed AI read had written). */
  deleteVolumes(studyId: string, prefix: string): number {
    return this.db.prepare("DELETE FROM imaging_volumes WHERE study_id = ? AND substr(key, 1, length(?)) = ?").run(studyId, prefix, prefix).changes;
  }

  volume(studyId: string, key: string): VolumeData {
    const studyRow = this.db.prepare(`${SELECT} AND s.id = ?`).get(studyId) as StudyRow | undefined;
    if (!studyRow) throw new NwError('not-found', 'No such study.');
    const row = this.db.prepare('SELECT components, min, max, data FROM imaging_volumes WHERE study_id = ? AND key = ?').get(studyId, key) as
      | { components: 1 | 3; min: number; max: number; data: Buffer }
      | undefined;
    if (!row) throw new NwError('not-found', `This study has no volume ${key}.`);
    const study = toStudy(studyRow);
    return {
      studyId,
      key,
      dims: [study.dims[0], study.dims[1], study.dims[2]],
      components: row.components,
      pixdim: study.pixdim,
      affine: JSON.parse(studyRow.affine_json) as number[][],
      range: [row.min, row.max],
      dataBase64: row.data.toString('base64'),
    };
  }
}
