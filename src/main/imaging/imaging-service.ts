/**
 * The radiologist's import: browse the import roots, list the series in a folder (with the patient each
 * names and how that matches the local records), then read → fit → store as a background job whose
 * progress goes to the window that started it. Reading, the mask and the checks run on worker threads
 * (engines.ts); the study's volumes are written in chunks of short transactions, and the study becomes
 * visible only in the last one, which also links its patient (created there when the radiologist
 * registers one from the DICOM data) and audits it. A failed import leaves nothing but its audit entry.
 */
import { randomUUID } from 'node:crypto';
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ImagingJob, SeriesSummaryView, Study } from '../../shared/ipc.js';
import { NwError } from '../../shared/errors.js';
import type { AuditActor, AuditLedger } from '../security/audit-ledger.js';
import type { StoreService } from '../store/store-service.js';
import { Outbox } from '../store/outbox.js';
import { PatientsRepository } from '../patients/patients-repo.js';
import { toFhirPatient } from '../fhir/resources.js';
import type { DiffusionContrast } from './contrast.js';
import { probeNiftiDwi } from './nifti.js';
import { PatientMatcher, type ImportDecision, type ResolvedDecision } from './patient-match.js';
import { StudiesRepository, studyWarnings } from './studies-repo.js';
import { ImagingInputError, type DicomPatient, type DwiSeries, type ProgressReporter, type SeriesSummary, type TensorMaps } from './types.js';

/** The readers and the fit, handed in by the composition root. */
export interface ImagingEngines {
  scanDicomFolder(dir: string): Promise<SeriesSummary[]>;
  readDicomDwi(dir: string, options: { seriesInstanceUid?: string; onProgress?: ProgressReporter }): Promise<DwiSeries>;
  readNiftiDwi(nii: string, bval: string, bvec: string): Promise<DwiSeries>;
  fitTensors(series: DwiSeries, options: { mask: 'otsu' | 'none'; onProgress?: ProgressReporter }): Promise<TensorMaps>;
  diffusionContrast(series: DwiSeries, mask: Uint8Array | null): Promise<DiffusionContrast>;
}

export interface ImportRequest extends ImportDecision {
  path: string;
  seriesInstanceUid?: string | undefined;
  bval?: string | undefined;
  bvec?: string | undefined;
  mask: boolean;
}

/** What the caller may see and do, as the handler knows it from the session. */
export interface ImagingViewer {
  /** An active break-glass grant: restricted records are shown in full. */
  seeRestricted: boolean;
  /** May register a patient from a study's DICOM identity (patients:create-from-study or patients:write). */
  canCreatePatient: boolean;
}

const NIFTI = /\.nii(\.gz)?$/i;
const JOB_MEMORY = 50;
/**
 * Bytes of volumes per write transaction (at least one volume each). Measured here on the encrypted
 * store: a 512 KB transaction commits in ~3 ms, a 2 MB one in ~30 ms (bench/ward-load --import).
 */
const WRITE_CHUNK_BYTES = 512 * 1024;
/** Absolute POSIX or Windows path (the IPC schema says the same to the page). */
const ABSOLUTE = /^(\/|[A-Za-z]:[\\/]|\\\\)/;

export class ImagingService {
  private readonly jobs = new Map<string, ImagingJob & { ownerId: string }>();
  /** Imports run one at a time: the fit already uses every core. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {
      importRoots: string[];
      /** The app's StoreService (bench/ward-load composes the same service on its own store). */
      store: Pick<StoreService, 'db' | 'transaction'>;
      engines: ImagingEngines;
      ledger: () => AuditLedger;
      now: () => Date;
      notify: (connectionId: string, job: ImagingJob) => void;
      log: (message: string) => void;
      /** Bytes of volumes per write transaction (default WRITE_CHUNK_BYTES). */
      writeChunkBytes?: number;
    },
  ) {}

  /** Resolves a path and refuses anything outside the import roots (symlinks included). */
  private async allowed(target: string): Promise<string> {
    // A relative path would resolve against this process's working folder, which the person cannot see.
    if (!ABSOLUTE.test(target) || !path.isAbsolute(target)) throw new NwError('bad-request', `${target}: paths must be absolute.`);
    let real: string;
    try {
      real = await realpath(path.resolve(target));
    } catch {
      throw new NwError('not-found', `${target} does not exist.`);
    }
    for (const root of this.deps.importRoots) {
      const realRoot = await realpath(root).catch(() => null);
      if (realRoot && (real === realRoot || real.startsWith(realRoot + path.sep))) return real;
    }
    throw new NwError('forbidden', `${target} is outside the import folders (${this.deps.importRoots.join(', ')}).`);
  }

  async browse(target: string | undefined) {
    const roots = [];
    for (const root of this.deps.importRoots) if ((await stat(root).catch(() => null))?.isDirectory()) roots.push(root);
    if (!target) return { path: null, parent: null, roots, entries: roots.map((root) => ({ name: root, path: root, kind: 'dir' as const, size: 0 })) };
    const dir = await this.allowed(target);
    if (!(await stat(dir)).isDirectory()) throw new NwError('bad-request', `${target} is not a folder.`);
    // Paths are shown as the person navigated them (a root may be a symlink); the real path is only for the check above.
    const shown = path.resolve(target);
    const names = await readdir(dir, { withFileTypes: true });
    const entries = [];
    for (const entry of names) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(shown, entry.name);
      const info = await stat(full).catch(() => null);
      if (!info) continue;
      entries.push({ name: entry.name, path: full, kind: info.isDirectory() ? ('dir' as const) : ('file' as const), size: info.isDirectory() ? 0 : info.size });
    }
    entries.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'dir' ? -1 : 1));
    const isRoot = roots.some((root) => path.resolve(root) === shown);
    return { path: shown, parent: isRoot ? null : path.dirname(shown), roots, entries: entries.slice(0, 2000) };
  }

  /**
   * The DICOM series of a folder (with the patient each names and its match against the local records)
   * and its NIfTI files (each checked from its header: `problem` says why one cannot be imported). A
   * path naming a .nii/.nii.gz file that is not a NIfTI-1 diffusion series is refused.
   */
  async scan(
    target: string,
    viewer: Pick<ImagingViewer, 'seeRestricted'> = { seeRestricted: false },
  ): Promise<{ series: SeriesSummaryView[]; nifti: { file: string; bval: string | null; bvec: string | null; problem: string | null }[] }> {
    const dir = await this.allowed(target);
    const info = await stat(dir);
    const folder = info.isDirectory() ? dir : path.dirname(dir);
    // Reported as navigated, like browse (a root may be a symlink); the real folder is only for reading.
    const shownFolder = info.isDirectory() ? path.resolve(target) : path.dirname(path.resolve(target));
    if (!info.isDirectory() && NIFTI.test(dir)) {
      await probeNiftiDwi(dir).catch((error: unknown) => {
        throw asInputError(error);
      });
    }
    const series = await this.engines().scanDicomFolder(folder).catch((error: unknown) => {
      throw asInputError(error);
    });
    const files = await readdir(folder);
    const nifti = await Promise.all(
      files
        .filter((f) => NIFTI.test(f))
        .map(async (f) => {
          const base = f.replace(NIFTI, '');
          const bval = files.includes(`${base}.bval`) ? path.join(shownFolder, `${base}.bval`) : null;
          const bvec = files.includes(`${base}.bvec`) ? path.join(shownFolder, `${base}.bvec`) : null;
          const file = path.join(shownFolder, f);
          const problem = await probeNiftiDwi(file).then(
            () => (bval && bvec ? null : `${f}: no ${!bval ? `${base}.bval` : `${base}.bvec`} next to it: b-values and gradient directions are needed to fit tensors`),
            (error: unknown) => (error instanceof ImagingInputError ? error.message : `${file}: cannot be read`),
          );
          return { file, bval, bvec, problem };
        }),
    );
    const matcher = new PatientMatcher(this.deps.store.db, this.deps.now);
    return {
      series: series.map((s) => ({
        seriesInstanceUid: s.seriesInstanceUid,
        seriesNumber: s.seriesNumber,
        seriesDescription: s.seriesDescription,
        manufacturer: s.manufacturer,
        layout: s.layout,
        fileCount: s.files.length,
        volumes: s.volumes,
        dims: s.dims,
        bvals: s.bvals,
        isDiffusion: s.isDiffusion,
        patient: s.patient,
        match: matcher.match(s.patient, viewer.seeRestricted),
      })),
      nifti,
    };
  }

  /**
   * The identity the DICOM series to import names, from its headers, to check the decision before the
   * job starts. Undefined when the headers cannot tell yet (unreadable files, no or several series
   * without a choice): the job then fails with the reader's own message, or checks after reading.
   */
  private async dicomIdentity(source: string, seriesInstanceUid: string | undefined): Promise<DicomPatient | null | undefined> {
    const info = await stat(source);
    const folder = info.isDirectory() ? source : path.dirname(source);
    const all = await this.engines()
      .scanDicomFolder(folder)
      .catch(() => null);
    if (!all) return undefined;
    const chosen =
      seriesInstanceUid !== undefined
        ? all.find((s) => s.seriesInstanceUid === seriesInstanceUid)
        : info.isDirectory()
          ? all.length === 1
            ? all[0]
            : undefined
          : all.find((s) => s.files.includes(source));
    return chosen ? chosen.patient : undefined;
  }

  private engines(): ImagingEngines {
    return this.deps.engines;
  }

  jobsFor(userId: string): ImagingJob[] {
    return [...this.jobs.values()].filter((job) => job.ownerId === userId).map(({ ownerId: _owner, ...job }) => job).reverse();
  }

  /**
   * Checks the request (the path, the NIfTI header, the patient decision against the identity in the
   * files), then queues the job and returns at once; progress goes to `connectionId`. The decision is
   * checked again when the study is stored, against the files as read.
   */
  async startImport(request: ImportRequest, actor: AuditActor, connectionId: string, viewer: ImagingViewer = { seeRestricted: false, canCreatePatient: false }): Promise<ImagingJob> {
    const source = await this.allowed(request.path);
    const isNifti = NIFTI.test(source);
    let bval: string | null = null;
    let bvec: string | null = null;
    if (isNifti) {
      await probeNiftiDwi(source).catch((error: unknown) => {
        throw asInputError(error);
      });
      const base = source.replace(NIFTI, '');
      bval = request.bval ? await this.allowed(request.bval) : `${base}.bval`;
      bvec = request.bvec ? await this.allowed(request.bvec) : `${base}.bvec`;
    }
    if (request.createPatient && !viewer.canCreatePatient) throw new NwError('forbidden', 'Your role does not register patients.');
    const identity = isNifti ? null : await this.dicomIdentity(source, request.seriesInstanceUid);
    if (identity !== undefined) new PatientMatcher(this.deps.store.db, this.deps.now).resolve(identity, request, { isNifti, seeRestricted: viewer.seeRestricted });
    const job: ImagingJob & { ownerId: string } = {
      id: randomUUID(),
      ownerId: actor.userId,
      state: 'running',
      stage: 'queued',
      fraction: 0,
      message: 'Waiting for the previous import to finish',
      source,
      studyId: null,
      error: null,
      startedAt: this.deps.now().toISOString(),
      patientId: null,
      warnings: [],
    };
    this.jobs.set(job.id, job);
    if (this.jobs.size > JOB_MEMORY) this.jobs.delete(this.jobs.keys().next().value as string);
    const update = (changes: Partial<ImagingJob>) => {
      Object.assign(job, changes);
      const { ownerId: _owner, ...view } = job;
      this.deps.notify(connectionId, view);
    };
    this.queue = this.queue.then(() => this.run(job, update, { request, source, isNifti, bval, bvec, actor, viewer }));
    const { ownerId: _owner, ...view } = job;
    return view;
  }

  private async run(
    job: ImagingJob,
    update: (changes: Partial<ImagingJob>) => void,
    input: { request: ImportRequest; source: string; isNifti: boolean; bval: string | null; bvec: string | null; actor: AuditActor; viewer: ImagingViewer },
  ): Promise<void> {
    const { request, source, actor, viewer } = input;
    // Reading is the first 40 % of the bar, fitting the next 50 %, saving the rest.
    const stageReporter =
      (stage: string, from: number, span: number): ProgressReporter =>
      (p) =>
        update({ stage, fraction: from + span * Math.min(1, Math.max(0, p.fraction)), message: p.message ?? stage });
    let pendingId: string | null = null;
    try {
      update({ stage: 'reading', fraction: 0, message: `Reading ${path.basename(source)}` });
      const series = input.isNifti
        ? await this.engines().readNiftiDwi(source, input.bval!, input.bvec!)
        : await this.engines().readDicomDwi(source, { seriesInstanceUid: request.seriesInstanceUid, onProgress: stageReporter('reading', 0, 0.4) });
      update({ stage: 'fitting', fraction: 0.4, message: `Fitting tensors (${series.dims.slice(0, 3).join('×')}, ${series.dims[3]} volumes)` });
      const started = performance.now();
      const maps = await this.engines().fitTensors(series, { mask: request.mask ? 'otsu' : 'none', onProgress: stageReporter('fitting', 0.4, 0.5) });
      const fitSeconds = (performance.now() - started) / 1000;
      const contrast = await this.engines().diffusionContrast(series, request.mask ? maps.mask : null);
      update({ stage: 'saving', fraction: 0.92, message: 'Saving to the encrypted store', warnings: studyWarnings(contrast) });
      const description = series.source.seriesDescription || path.basename(source);
      const repo = new StudiesRepository(this.deps.store.db, this.deps.now);
      // The volumes go in short transactions with the loop free in between (MQTT ingest and alarm ticks
      // run on it); the study stays invisible until the last transaction completes, links and audits it.
      this.deps.store.transaction(() => repo.discardAllPending()); // what an interrupted import left (imports run one at a time)
      pendingId = this.deps.store.transaction(() =>
        repo.insertPending({ series, maps, createdBy: actor.username, description, sourcePath: source, masked: request.mask, fitSeconds, contrast }),
      );
      const chunks = StudiesRepository.volumeChunks(series, maps, this.deps.writeChunkBytes ?? WRITE_CHUNK_BYTES);
      for (const [i, chunk] of chunks.entries()) {
        const began = performance.now();
        this.deps.store.transaction(() => repo.putVolumes(pendingId!, chunk));
        update({ stage: 'saving', fraction: 0.92 + (0.08 * (i + 1)) / chunks.length, message: `Saving to the encrypted store (${i + 1}/${chunks.length})` });
        // As long again with the loop free (1–20 ms): at most half of the loop's time and of the disk's
        // writes go to the import, and the readings' commits never queue behind a stream of volumes.
        await new Promise<void>((resolve) => setTimeout(resolve, Math.min(20, Math.max(1, performance.now() - began))));
      }
      const studyId = pendingId;
      const study: Study = this.deps.store.transaction(() => {
        // Checked again against the files as read (and the records as they are now), never only the page's word.
        const decided = new PatientMatcher(this.deps.store.db, this.deps.now).resolve(series.source.patient ?? null, request, { isNifti: input.isNifti, seeRestricted: viewer.seeRestricted });
        const patientId = this.applyDecision(decided, actor, { studySource: source, dicomPatientId: series.source.patient?.id ?? null });
        const saved = repo.complete(studyId, patientId, { ...decided.link, by: actor.username, at: this.deps.now().toISOString() });
        this.deps.ledger().append({
          actor,
          action: 'imaging.import',
          outcome: 'success',
          entityType: 'ImagingStudy',
          entityId: saved.id,
          patientId: saved.patientId,
          detail: {
            source,
            volumes: series.dims[3],
            dims: series.dims,
            fitSeconds: Math.round(fitSeconds * 1000) / 1000,
            patientLink: decided.link,
            dicomPatientId: series.source.patient?.id ?? null,
            diffusionContrast: contrastFacts(contrast),
          },
        });
        return saved;
      });
      pendingId = null;
      const patientNote = study.patient ? ` for ${study.patient.name} (MRN ${study.patient.mrn})` : ' without a patient';
      update({ state: 'done', stage: 'done', fraction: 1, message: `Imported ${description}${patientNote}`, studyId: study.id, patientId: study.patientId, warnings: study.warnings });
    } catch (error) {
      const message = error instanceof ImagingInputError || error instanceof NwError ? error.message : `Import failed: ${(error as Error)?.message ?? String(error)}`;
      if (!(error instanceof ImagingInputError) && !(error instanceof NwError)) this.deps.log(`import of ${source} failed: ${(error as Error)?.stack ?? String(error)}`);
      try {
        this.deps.store.transaction(() => {
          if (pendingId !== null) new StudiesRepository(this.deps.store.db, this.deps.now).discard(pendingId);
          this.deps.ledger().append({ actor, action: 'imaging.import', outcome: 'error', outcomeDetail: message, entityType: 'ImagingSource', entityId: source, detail: { source } });
        });
      } catch (auditError) {
        this.deps.log(`could not audit a failed import: ${(auditError as Error).message}`);
      }
      update({ state: 'failed', stage: 'failed', message, error: message });
    }
  }

  /**
   * Creates the patient a decision asks for (with its FHIR Patient in the outbox and its audit entry)
   * and returns the record id the study goes to. Call inside the transaction that stores the study.
   */
  private applyDecision(decided: ResolvedDecision, actor: AuditActor, facts: { studySource: string; dicomPatientId: string | null }): string | null {
    if (!decided.create) return decided.patientId;
    const db = this.deps.store.db;
    const patient = new PatientsRepository(db, this.deps.now).create(decided.create);
    new Outbox(db, this.deps.now).enqueue('create', toFhirPatient(patient));
    this.deps.ledger().append({
      actor,
      action: 'patient.create',
      outcome: 'success',
      entityType: 'Patient',
      entityId: patient.id,
      patientId: patient.id,
      detail: { from: 'imaging study', source: facts.studySource, dicomPatientId: facts.dicomPatientId, differences: decided.link.differences, override: decided.link.reason },
    });
    return patient.id;
  }

  /**
   * Links a study stored without a patient: to a record, or to one registered from the study's DICOM
   * identity, with the same checks as an import. Call inside the transaction that audits it (the
   * dispatcher's, for `imaging.linkPatient`).
   */
  linkPatient(studyId: string, decision: ImportDecision, actor: AuditActor, viewer: ImagingViewer): { study: Study; link: ResolvedDecision['link'] } {
    const studies = new StudiesRepository(this.deps.store.db, this.deps.now);
    const study = studies.get(studyId);
    if (!study) throw new NwError('not-found', 'No such study.');
    if (study.patientId) throw new NwError('conflict', `This study already belongs to a patient (MRN ${study.patient?.mrn ?? '?'}).`);
    if (decision.createPatient && !viewer.canCreatePatient) throw new NwError('forbidden', 'Your role does not register patients.');
    const decided = new PatientMatcher(this.deps.store.db, this.deps.now).resolve(study.dicomPatient, decision, { isNifti: study.sourceKind === 'nifti', seeRestricted: viewer.seeRestricted });
    const patientId = this.applyDecision(decided, actor, { studySource: study.sourcePath, dicomPatientId: study.dicomPatient?.id ?? null });
    if (!patientId) throw new NwError('bad-request', 'Name the patient to link the study to.');
    const linked = studies.linkPatient(studyId, patientId, { ...decided.link, by: actor.username, at: this.deps.now().toISOString() });
    return { study: linked, link: decided.link };
  }

  /** Resolves when every queued import has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue;
  }
}

/** The contrast check as written to the audit entry. */
function contrastFacts(contrast: DiffusionContrast): Record<string, unknown> {
  return { status: contrast.status, flatVolumes: contrast.flatVolumes.length, decisiveVolumes: contrast.decisiveVolumes, attenuation: contrast.attenuation };
}

function asInputError(error: unknown): Error {
  if (error instanceof ImagingInputError) return new NwError('bad-request', error.message);
  return error instanceof Error ? error : new Error(String(error));
}
