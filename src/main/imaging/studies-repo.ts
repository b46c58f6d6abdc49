/** Imaging studies and their volumes in the encrypted store. */
import { randomUUID } from 'node:crypto';
import type { Db } from '../store/database.js';
import type { Study, VolumeData } from '../../shared/ipc.js';
import { NwError } from '../../shared/errors.js';
import type { DwiSeries, TensorMaps } from './types.js';

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
}

function toStudy(row: StudyRow): Study {
  return {
    id: row.id,
    createdAt: row.created_at,
    createdBy: row.created_by,
    patientId: row.patient_id,
    description: row.description,
    sourceKind: row.source_kind,
    sourcePath: row.source_path,
    manufacturer: row.manufacturer,
    dims: JSON.parse(row.dims_json) as Study['dims'],
    pixdim: JSON.parse(row.pixdim_json) as Study['pixdim'],
    bvals: JSON.parse(row.bvals_json) as number[],
    masked: row.masked === 1,
    fitSeconds: row.fit_seconds,
    summary: JSON.parse(row.summary_json) as Study['summary'],
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

export function summarise(maps: TensorMaps): Study['summary'] {
  let n = 0;
  let fa = 0;
  let md = 0;
  for (let i = 0; i < maps.mask.length; i++) {
    if (!maps.mask[i]) continue;
    n += 1;
    fa += maps.fa[i]!;
    md += maps.md[i]!;
  }
  return { maskedVoxels: n, meanFa: n ? fa / n : 0, meanMd: n ? md / n : 0 };
}

export class StudiesRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  /** Writes the study, its maps and every DWI volume. Call inside the transaction that audits it. */
  save(input: { series: DwiSeries; maps: TensorMaps; createdBy: string; patientId: string | null; description: string; sourcePath: string; masked: boolean; fitSeconds: number }): Study {
    const { series, maps } = input;
    const id = randomUUID();
    this.db
      .prepare(
        `INSERT INTO imaging_studies (id, created_at, created_by, patient_id, description, source_kind, source_path, manufacturer, dims_json, pixdim_json,
           affine_json, bvals_json, bvecs_json, masked, fit_seconds, summary_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        this.now().toISOString(),
        input.createdBy,
        input.patientId,
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
        JSON.stringify(summarise(maps)),
      );
    const insert = this.db.prepare('INSERT INTO imaging_volumes (study_id, key, components, min, max, data) VALUES (?, ?, ?, ?, ?, ?)');
    const put = (key: string, components: 1 | 3, values: Float32Array) => {
      const [min, max] = range(values);
      insert.run(id, key, components, min, max, asBlob(values));
    };
    put('fa', 1, maps.fa);
    put('md', 1, maps.md);
    put('ad', 1, maps.ad);
    put('rd', 1, maps.rd);
    put('v1', 3, maps.v1);
    put('colour-fa', 3, maps.colourFa);
    put('mask', 1, Float32Array.from(maps.mask));
    const [nx, ny, nz, nv] = series.dims;
    const size = nx * ny * nz;
    for (let v = 0; v < nv; v++) put(`dwi:${v}`, 1, series.data.subarray(v * size, (v + 1) * size));
    return this.get(id)!;
  }

  get(id: string): Study | null {
    const row = this.db.prepare('SELECT * FROM imaging_studies WHERE id = ?').get(id) as StudyRow | undefined;
    return row ? toStudy(row) : null;
  }

  list(limit = 50): Study[] {
    return (this.db.prepare('SELECT * FROM imaging_studies ORDER BY created_at DESC LIMIT ?').all(limit) as StudyRow[]).map(toStudy);
  }

  volume(studyId: string, key: string): VolumeData {
    const studyRow = this.db.prepare('SELECT * FROM imaging_studies WHERE id = ?').get(studyId) as StudyRow | undefined;
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
