/**
 * The radiologist's import: browse the import roots, list the series in a folder, then read → fit →
 * store as a background job whose progress goes to the window that started it. The study, its maps
 * and its audit entry are written in one transaction; a failed import writes nothing but its audit entry.
 */
import { randomUUID } from 'node:crypto';
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ImagingJob, SeriesSummaryView, Study } from '../../shared/ipc.js';
import { NwError } from '../../shared/errors.js';
import type { AuditActor, AuditLedger } from '../security/audit-ledger.js';
import type { StoreService } from '../store/store-service.js';
import { StudiesRepository } from './studies-repo.js';
import { ImagingInputError, type DwiSeries, type ProgressReporter, type SeriesSummary, type TensorMaps } from './types.js';

/** The readers and the fit, handed in by the composition root. */
export interface ImagingEngines {
  scanDicomFolder(dir: string): Promise<SeriesSummary[]>;
  readDicomDwi(dir: string, options: { seriesInstanceUid?: string; onProgress?: ProgressReporter }): Promise<DwiSeries>;
  readNiftiDwi(nii: string, bval: string, bvec: string): Promise<DwiSeries>;
  fitTensors(series: DwiSeries, options: { mask: 'otsu' | 'none'; onProgress?: ProgressReporter }): Promise<TensorMaps>;
}

export interface ImportRequest {
  path: string;
  seriesInstanceUid?: string | undefined;
  bval?: string | undefined;
  bvec?: string | undefined;
  mask: boolean;
  patientId?: string | undefined;
}

const NIFTI = /\.nii(\.gz)?$/i;
const JOB_MEMORY = 50;

export class ImagingService {
  private readonly jobs = new Map<string, ImagingJob & { ownerId: string }>();
  /** Imports run one at a time: the fit already uses every core. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {
      importRoots: string[];
      store: StoreService;
      engines: ImagingEngines;
      ledger: () => AuditLedger;
      now: () => Date;
      notify: (connectionId: string, job: ImagingJob) => void;
      log: (message: string) => void;
    },
  ) {}

  /** Resolves a path and refuses anything outside the import roots (symlinks included). */
  private async allowed(target: string): Promise<string> {
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

  async scan(target: string): Promise<{ series: SeriesSummaryView[]; nifti: { file: string; bval: string | null; bvec: string | null }[] }> {
    const dir = await this.allowed(target);
    const info = await stat(dir);
    const folder = info.isDirectory() ? dir : path.dirname(dir);
    const series = await this.engines().scanDicomFolder(folder).catch((error: unknown) => {
      throw asInputError(error);
    });
    const files = await readdir(folder);
    const nifti = files
      .filter((f) => NIFTI.test(f))
      .map((f) => {
        const base = f.replace(NIFTI, '');
        const bval = files.includes(`${base}.bval`) ? path.join(folder, `${base}.bval`) : null;
        const bvec = files.includes(`${base}.bvec`) ? path.join(folder, `${base}.bvec`) : null;
        return { file: path.join(folder, f), bval, bvec };
      });
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
      })),
      nifti,
    };
  }

  private engines(): ImagingEngines {
    return this.deps.engines;
  }

  jobsFor(userId: string): ImagingJob[] {
    return [...this.jobs.values()].filter((job) => job.ownerId === userId).map(({ ownerId: _owner, ...job }) => job).reverse();
  }

  /** Checks the request, then queues the job and returns at once; progress goes to `connectionId`. */
  async startImport(request: ImportRequest, actor: AuditActor, connectionId: string): Promise<ImagingJob> {
    const source = await this.allowed(request.path);
    const isNifti = NIFTI.test(source);
    let bval: string | null = null;
    let bvec: string | null = null;
    if (isNifti) {
      const base = source.replace(NIFTI, '');
      bval = request.bval ? await this.allowed(request.bval) : `${base}.bval`;
      bvec = request.bvec ? await this.allowed(request.bvec) : `${base}.bvec`;
    }
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
    };
    this.jobs.set(job.id, job);
    if (this.jobs.size > JOB_MEMORY) this.jobs.delete(this.jobs.keys().next().value as string);
    const update = (changes: Partial<ImagingJob>) => {
      Object.assign(job, changes);
      const { ownerId: _owner, ...view } = job;
      this.deps.notify(connectionId, view);
    };
    this.queue = this.queue.then(() => this.run(job, update, { request, source, isNifti, bval, bvec, actor }));
    const { ownerId: _owner, ...view } = job;
    return view;
  }

  private async run(
    job: ImagingJob,
    update: (changes: Partial<ImagingJob>) => void,
    input: { request: ImportRequest; source: string; isNifti: boolean; bval: string | null; bvec: string | null; actor: AuditActor },
  ): Promise<void> {
    const { request, source, actor } = input;
    // Reading is the first 40 % of the bar, fitting the next 50 %, saving the rest.
    const stageReporter =
      (stage: string, from: number, span: number): ProgressReporter =>
      (p) =>
        update({ stage, fraction: from + span * Math.min(1, Math.max(0, p.fraction)), message: p.message ?? stage });
    try {
      update({ stage: 'reading', fraction: 0, message: `Reading ${path.basename(source)}` });
      const series = input.isNifti
        ? await this.engines().readNiftiDwi(source, input.bval!, input.bvec!)
        : await this.engines().readDicomDwi(source, { seriesInstanceUid: request.seriesInstanceUid, onProgress: stageReporter('reading', 0, 0.4) });
      update({ stage: 'fitting', fraction: 0.4, message: `Fitting tensors (${series.dims.slice(0, 3).join('×')}, ${series.dims[3]} volumes)` });
      const started = performance.now();
      const maps = await this.engines().fitTensors(series, { mask: request.mask ? 'otsu' : 'none', onProgress: stageReporter('fitting', 0.4, 0.5) });
      const fitSeconds = (performance.now() - started) / 1000;
      update({ stage: 'saving', fraction: 0.92, message: 'Saving to the encrypted store' });
      const description = series.source.seriesDescription || path.basename(source);
      const study: Study = this.deps.store.transaction(() => {
        if (request.patientId && !this.deps.store.db.prepare('SELECT 1 FROM patients WHERE id = ?').get(request.patientId)) {
          throw new NwError('not-found', 'The patient chosen for this study does not exist.');
        }
        const saved = new StudiesRepository(this.deps.store.db, this.deps.now).save({
          series,
          maps,
          createdBy: actor.username,
          patientId: request.patientId ?? null,
          description,
          sourcePath: source,
          masked: request.mask,
          fitSeconds,
        });
        this.deps.ledger().append({
          actor,
          action: 'imaging.import',
          outcome: 'success',
          entityType: 'ImagingStudy',
          entityId: saved.id,
          patientId: saved.patientId,
          detail: { source, volumes: series.dims[3], dims: series.dims, fitSeconds: Math.round(fitSeconds * 1000) / 1000 },
        });
        return saved;
      });
      update({ state: 'done', stage: 'done', fraction: 1, message: `Imported ${description}`, studyId: study.id });
    } catch (error) {
      const message = error instanceof ImagingInputError || error instanceof NwError ? error.message : `Import failed: ${(error as Error)?.message ?? String(error)}`;
      if (!(error instanceof ImagingInputError) && !(error instanceof NwError)) this.deps.log(`import of ${source} failed: ${(error as Error)?.stack ?? String(error)}`);
      try {
        this.deps.store.transaction(() =>
          this.deps.ledger().append({ actor, action: 'imaging.import', outcome: 'error', outcomeDetail: message, entityType: 'ImagingSource', entityId: source, detail: { source } }),
        );
      } catch (auditError) {
        this.deps.log(`could not audit a failed import: ${(auditError as Error).message}`);
      }
      update({ state: 'failed', stage: 'failed', message, error: message });
    }
  }

  /** Resolves when every queued import has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue;
  }
}

function asInputError(error: unknown): Error {
  if (error instanceof ImagingInputError) return new NwError('bad-request', error.message);
  return error instanceof Error ? error : new Error(String(error));
}
