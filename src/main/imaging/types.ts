/**
 * The in-memory diffusion series every reader produces and the tensor fit consumes.
 * Voxel order and orientation are exactly what dcm2niix writes to NIfTI, so that a series read from
 * DICOM and the reference .nii of the same series compare voxel for voxel, and b-vectors are in the
 * image frame (FSL convention) exactly as dcm2niix's .bvec.
 */

/** A 4-D series: x fastest, then y, then z, then volume. */
export interface DwiSeries {
  /** [nx, ny, nz, volumes] */
  dims: [number, number, number, number];
  /** Scaled voxel values (rescale slope/intercept and vendor scaling already applied). Length nx*ny*nz*volumes. */
  data: Float32Array;
  /** Voxel size in mm. */
  pixdim: [number, number, number];
  /** NIfTI sform: voxel (i,j,k,1) → RAS+ mm, rows of a 4×4 matrix (srow_x, srow_y, srow_z, [0,0,0,1]). */
  affine: [number[], number[], number[], number[]];
  /** One per volume, s/mm². */
  bvals: number[];
  /** One unit vector (or [0,0,0]) per volume, image frame, FSL convention. */
  bvecs: [number, number, number][];
  source: DwiSource;
}

export interface DwiSource {
  kind: 'dicom' | 'nifti';
  /** Files the series was read from (all slices of all volumes, or the .nii + .bval + .bvec). */
  files: string[];
  seriesInstanceUid?: string;
  seriesDescription?: string;
  manufacturer?: string;
  /** e.g. 'classic', 'enhanced', 'mosaic' for DICOM. */
  layout?: string;
  patientName?: string;
  patientId?: string;
  studyDate?: string;
  /** Who the DICOM header says the series is of (absent for NIfTI, or when the header names nobody). */
  patient?: DicomPatient;
}

/** The patient identity a DICOM header carries, in the record's shapes (see dicom-patient.ts). */
export interface DicomPatient {
  /** (0010,0020) Patient ID, trimmed; null when absent. */
  id: string | null;
  /** (0010,0010) as stored (PN: Family^Given^Middle^Prefix^Suffix). */
  name: string | null;
  familyName: string | null;
  /** Given and middle names. */
  givenName: string | null;
  /** (0010,0030) as YYYY-MM-DD; null when absent or not a date. */
  birthDate: string | null;
  /** (0010,0040) M/F/O → male/female/other, anything else 'unknown'; null when absent. */
  sex: 'female' | 'male' | 'other' | 'unknown' | null;
}

/** One series found in a folder, before reading its voxels. */
export interface SeriesSummary {
  seriesInstanceUid: string;
  seriesNumber: number | null;
  seriesDescription: string;
  manufacturer: string;
  layout: 'classic' | 'enhanced' | 'mosaic';
  files: string[];
  /** Volumes and slices as far as the headers tell, before reading pixel data. */
  volumes: number;
  dims: [number, number, number];
  bvals: number[];
  isDiffusion: boolean;
  /** Who the first file's header says the series is of; null when it names nobody. */
  patient: DicomPatient | null;
}

/** Reports progress of long work (reading, fitting) as a fraction 0..1 with a short stage name. */
export type ProgressReporter = (progress: { stage: string; fraction: number; message?: string }) => void;

/** Raised for bad input: names the file and the reason; the caller shows `message` as is. */
export class ImagingInputError extends Error {
  constructor(
    message: string,
    readonly file: string | null = null,
  ) {
    super(message);
    this.name = 'ImagingInputError';
  }
}

/** Maps from a tensor fit. Each scalar map has nx*ny*nz values; vector maps 3 per voxel (x,y,z interleaved). */
export interface TensorMaps {
  dims: [number, number, number];
  pixdim: [number, number, number];
  affine: DwiSeries['affine'];
  mask: Uint8Array;
  fa: Float32Array;
  md: Float32Array;
  ad: Float32Array;
  rd: Float32Array;
  /** Principal eigenvector, 3 per voxel. */
  v1: Float32Array;
  /** |v1| × FA as RGB in 0..1, 3 per voxel. */
  colourFa: Float32Array;
}
