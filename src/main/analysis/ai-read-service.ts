/**
 * The AI second read inside the app (issue 9 items 6–8): a radiologist starts a read of a stored study;
 * it runs as a background job (the pipeline on its analysis worker thread, analysis-client.ts) whose
 * progress per stage goes to the window that started it; the result is stored with its heat map and
 * cluster map, and its FHIR report (fhir-report.ts) is queued in the outbox, preliminary. The
 * radiologist then confirms (final), amends or rejects it (entered-in-error) with a comment; each
 * decision is audited and queued in the transaction that records it, and a confirmed (or amended)
 * suspected lesion puts a notification in the physicians' in-app inbox and a FHIR Communication in the
 * outbox. Nothing is final without a person, and a read is never decided twice.
 *
 * Storage: the two maps go first, each in its own short transaction (the ward's loop runs between
 * them); the read row, its report in the outbox and the audit entry go in one last transaction. A read
 * that fails or is cancelled removes what it wrote and leaves its audit entry only.
 */
import { randomUUID } from 'node:crypto';
import type { Communication, DiagnosticReport, ImagingStudy, Observation, Resource } from '@medplum/fhirtypes';
import type { AiRead, AiReadJob, Study } from '../../shared/ipc.js';
import { AI_READ_STAGES } from '../../shared/ipc.js';
import { NwError } from '../../shared/errors.js';
import type { AuditActor, AuditLedger } from '../security/audit-ledger.js';
import type { StoreService } from '../store/store-service.js';
import { Outbox } from '../store/outbox.js';
import { ValidatingOutbox, type FhirValidator } from '../fhir/validation.js';
import { PatientsRepository } from '../patients/patients-repo.js';
import { StudiesRepository } from '../imaging/studies-repo.js';
import { ImagingInputError, type DwiSeries } from '../imaging/types.js';
import { analyzeOnWorker, type WorkerAnalyzeOptions } from './analysis-client.js';
import { AiReadsRepository, NotificationsRepository, STATUS_OF_DECISION } from './ai-reads-repo.js';
import { decidedReport, reportResources, type ReportResources } from './fhir-report.js';
import { ModelFileError, modelHash, verifyModelFiles } from './model/model-check.js';
import type { AnalysisResult } from './pipeline.js';
import { clusterSummary, heatMapPicture, regionsInMm, withPrior } from './read-summary.js';

/** Each stage's usual share of a read's time (measured on the Siemens mosaic), for one progress bar. */
const STAGE_WEIGHTS: Record<(typeof AI_READ_STAGES)[number], number> = {
  queued: 0,
  loading: 0.05,
  checks: 0.01,
  backend: 0.02,
  model: 0.02,
  fit: 0.2,
  features: 0.05,
  'pca-kmeans': 0.3,
  slices: 0.05,
  cnn: 0.22,
  findings: 0.04,
  saving: 0.04,
};
const JOB_MEMORY = 50;
const DWI_SYSTEM = 'http://dicom.nema.org/resources/ontology/DCM';

export const HEATMAP_KEY = (readId: string) => `ai:${readId}:heatmap`;
export const CLUSTERS_KEY = (readId: string) => `ai:${readId}:clusters`;

export type Analyze = (series: DwiSeries, options: WorkerAnalyzeOptions) => Promise<AnalysisResult>;

export interface AiReadServiceDeps {
  store: Pick<StoreService, 'db' | 'transaction'>;
  modelDir: string;
  validator: FhirValidator;
  ledger: () => AuditLedger;
  now: () => Date;
  /** Progress of a job to the window that started it. */
  notify: (connectionId: string, job: AiReadJob) => void;
  /** A role's inbox changed. */
  notifyRole: (role: string, unread: number) => void;
  log: (message: string) => void;
  /** The read itself (default: the pipeline on its worker thread). */
  analyze?: Analyze;
}

/** A DICOM UID (2.25.<128-bit integer>, ISO/IEC 9834-8) from a UUID: the series UID of a study that has none stored. */
export function uidFromUuid(uuid: string): string {
  return `2.25.${BigInt(`0x${uuid.replace(/-/g, '')}`).toString(10)}`;
}

function imagingStudyOf(study: Study): ImagingStudy & { id: string } {
  return {
    resourceType: 'ImagingStudy',
    id: study.id,
    status: 'available',
    subject: { reference: `Patient/${study.patientId!}` },
    started: study.createdAt,
    modality: [{ system: DWI_SYSTEM, code: 'MR', display: 'Magnetic Resonance' }],
    description: study.description || 'Diffusion series',
    numberOfSeries: 1,
    series: [
      {
        uid: uidFromUuid(study.id),
        modality: { system: DWI_SYSTEM, code: 'MR', display: 'Magnetic Resonance' },
        description: `${study.description || 'Diffusion series'} (${study.dims.slice(0, 3).join('×')} × ${study.dims[3]} volumes, ${study.sourceKind})`,
      },
    ],
  };
}

type Job = AiReadJob & { ownerId: string; controller: AbortController };

export class AiReadService {
  private readonly jobs = new Map<string, Job>();
  /** Reads run one at a time: the fit and the CNN already use the cores they are given. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly deps: AiReadServiceDeps) {}

  private reads() {
    return new AiReadsRepository(this.deps.store.db, this.deps.now);
  }

  /** The model a new read would use, or why it cannot be used; never throws. */
  async modelState(): Promise<{ name: string | null; version: string | null; hash: string | null; error: string | null }> {
    try {
      const { manifest } = await verifyModelFiles(this.deps.modelDir);
      return { name: manifest.name, version: manifest.version, hash: modelHash(manifest), error: null };
    } catch (error) {
      return { name: null, version: null, hash: null, error: error instanceof ModelFileError ? error.message : `the AI model cannot be read: ${(error as Error).message}` };
    }
  }

  jobsFor(userId: string): AiReadJob[] {
    return [...this.jobs.values()].filter((j) => j.ownerId === userId).map(({ ownerId: _o, controller: _c, ...view }) => view);
  }

  /** Starts a read of a stored study; refused up front when the study, its patient or the model is not there. */
  async start(studyId: string, actor: AuditActor, connectionId: string): Promise<AiReadJob> {
    const study = new StudiesRepository(this.deps.store.db, this.deps.now).get(studyId);
    if (!study) throw new NwError('not-found', 'No such study.');
    if (!study.patientId) throw new NwError('conflict', 'This study belongs to no patient yet: link it to the patient first (a report must say whom it is about).');
    if (study.diffusionContrast?.status === 'absent') throw new NwError('bad-request', `The AI read refuses this series: ${study.diffusionContrast.message ?? 'it has no diffusion contrast'}`);
    const model = await this.modelState();
    if (model.error) throw new NwError('unavailable', `The AI read is not available: ${model.error}. The rest of the app works without it.`);
    const job: Job = {
      id: randomUUID(),
      ownerId: actor.userId,
      controller: new AbortController(),
      studyId,
      state: 'running',
      stage: 'queued',
      stageFraction: 0,
      fraction: 0,
      message: 'Waiting for the previous AI read to finish',
      readId: null,
      error: null,
      startedAt: this.deps.now().toISOString(),
      stages: [],
    };
    this.jobs.set(job.id, job);
    if (this.jobs.size > JOB_MEMORY) this.jobs.delete(this.jobs.keys().next().value as string);
    const update = (changes: Partial<AiReadJob>) => {
      Object.assign(job, changes);
      const { ownerId: _o, controller: _c, ...view } = job;
      this.deps.notify(connectionId, view);
    };
    this.queue = this.queue.then(() => this.run(job, study, actor, update));
    const { ownerId: _o, controller: _c, ...view } = job;
    return view;
  }

  cancel(jobId: string, userId: string): AiReadJob {
    const job = this.jobs.get(jobId);
    if (!job || job.ownerId !== userId) throw new NwError('not-found', 'No such AI read job of yours.');
    if (job.state === 'running') job.controller.abort(new Error('cancelled by the radiologist'));
    const { ownerId: _o, controller: _c, ...view } = job;
    return view;
  }

  private progress(stage: (typeof AI_READ_STAGES)[number], stageFraction: number): Pick<AiReadJob, 'stage' | 'stageFraction' | 'fraction'> {
    let before = 0;
    for (const name of AI_READ_STAGES) {
      if (name === stage) break;
      before += STAGE_WEIGHTS[name];
    }
    const f = Math.min(1, Math.max(0, stageFraction));
    return { stage, stageFraction: f, fraction: Math.min(1, before + STAGE_WEIGHTS[stage] * f) };
  }

  private async run(job: Job, study: Study, actor: AuditActor, update: (changes: Partial<AiReadJob>) => void): Promise<void> {
    const { store, now } = this.deps;
    const studies = new StudiesRepository(store.db, now);
    const readId = randomUUID();
    let wroteMaps = false;
    const signal = job.controller.signal;
    try {
      signal.throwIfAborted();
      update({ ...this.progress('loading', 0), message: 'Reading the series from the encrypted store' });
      const reader = studies.seriesReader(study.id);
      if (!reader) throw new NwError('not-found', 'The study was removed.');
      const { series } = reader;
      // One volume per turn of the event loop: MQTT ingest and the alarm ticks run on it too.
      for (let v = 0; v < series.dims[3]; v++) {
        reader.readVolume(v);
        if (v % 8 === 7) update({ ...this.progress('loading', (v + 1) / series.dims[3]), message: `Reading volume ${v + 1} of ${series.dims[3]}` });
        await new Promise((resolve) => setImmediate(resolve));
        signal.throwIfAborted();
      }
      update({ ...this.progress('loading', 1), message: 'Series loaded' });
      const analyze = this.deps.analyze ?? analyzeOnWorker;
      const result = await analyze(series, {
        modelDir: this.deps.modelDir,
        signal,
        onProgress: (p) => update({ ...this.progress(p.stage, p.fraction), message: `${p.stage} ${Math.round(p.fraction * 100)} %` }),
      });
      update({ ...this.progress('saving', 0), message: 'Saving the read', stages: result.stages });

      const prior = this.reads().priorFor(study.patientId!, study.id, study.createdAt);
      const { regions, clusters } = withPrior(regionsInMm(result.finding.regions, series.affine), clusterSummary(result, series.pixdim), prior);
      const patient = new PatientsRepository(store.db, now).get(study.patientId!);
      if (!patient) throw new NwError('not-found', "The study's patient record no longer exists.");
      const z = result.finding.slices.reduce((best, s) => (s.probability > best.probability ? s : best), result.finding.slices[0] ?? { z: Math.floor(series.dims[2] / 2), probability: 0 }).z;
      const issued = now();
      const resources = reportResources(
        { finding: { ...result.finding, slices: result.finding.slices.length }, regions, clusters, model: result.model, backend: result.backend },
        {
          issued,
          references: 'relative',
          reportId: readId,
          sourceLabel: study.description || study.sourcePath,
          subject: { patientId: patient.id, display: `${patient.givenName} ${patient.familyName} (MRN ${patient.mrn})` },
          imagingStudyId: study.id,
          heatMapPng: heatMapPicture(result.maps.fa, result.heatMap, result.maps.dims, z),
        },
      );
      signal.throwIfAborted();
      // Maps first, one short transaction each; invisible until the read row exists.
      wroteMaps = true;
      store.transaction(() => studies.putVolumes(study.id, [{ key: HEATMAP_KEY(readId), components: 1, values: result.heatMap }]));
      await new Promise((resolve) => setImmediate(resolve));
      store.transaction(() => studies.putVolumes(study.id, [{ key: CLUSTERS_KEY(readId), components: 1, values: Float32Array.from(result.clusters.labels) }]));
      await new Promise((resolve) => setImmediate(resolve));
      signal.throwIfAborted();
      const read = store.transaction(() => {
        const stored = this.reads().insert({
          id: readId,
          studyId: study.id,
          patientId: patient.id,
          createdBy: { userId: actor.userId, username: actor.username },
          model: { name: result.model.name, version: result.model.version, hash: result.model.hash },
          backend: result.backend.name,
          finding: result.finding.finding,
          probability: result.finding.probability,
          threshold: result.finding.threshold,
          conclusion: resources.report.conclusion!,
          detail: {
            regions,
            clusters,
            slices: result.finding.slices,
            stages: result.stages,
            backendDetail: result.backend.detail,
            skippedBackends: result.backend.skipped.map((s) => ({ name: s.backend, reason: s.reason })),
            prior: prior ? { readId: prior.id, studyId: prior.studyId, studyDescription: this.studyDescription(prior.studyId), createdAt: prior.createdAt } : null,
          },
          resources: this.resourceList(resources),
        });
        const outbox = new ValidatingOutbox(new Outbox(store.db, now), this.deps.validator);
        outbox.enqueue('update', imagingStudyOf(study));
        outbox.enqueue('update', resources.device as typeof resources.device & { id: string });
        for (const o of resources.observations) outbox.enqueue('create', o as Observation & { id: string });
        if (resources.media) outbox.enqueue('create', resources.media as typeof resources.media & { id: string });
        outbox.enqueue('create', resources.report as DiagnosticReport & { id: string });
        this.deps.ledger().append({
          actor,
          action: 'analysis.complete',
          outcome: 'success',
          entityType: 'DiagnosticReport',
          entityId: readId,
          patientId: patient.id,
          detail: {
            studyId: study.id,
            finding: stored.finding,
            probability: Math.round(stored.probability * 1e4) / 1e4,
            regions: regions.length,
            model: `${result.model.name} ${result.model.version}`,
            modelHash: result.model.hash,
            backend: result.backend.name,
            stages: result.stages,
          },
        });
        return stored;
      });
      update({ state: 'done', ...this.progress('saving', 1), stage: 'done', fraction: 1, readId: read.id, message: read.finding === 'suspected' ? `Lesion suspected (${regions.length} region${regions.length === 1 ? '' : 's'}): preliminary, for your decision` : 'No lesion found: preliminary, for your decision' });
    } catch (error) {
      const cancelled = signal.aborted;
      const message = cancelled
        ? 'The AI read was cancelled; nothing was saved.'
        : error instanceof ImagingInputError || error instanceof NwError || error instanceof ModelFileError
          ? error.message
          : `The AI read failed: ${(error as Error)?.message ?? String(error)}`;
      if (!cancelled && !(error instanceof ImagingInputError) && !(error instanceof NwError) && !(error instanceof ModelFileError)) this.deps.log(`AI read of study ${study.id} failed: ${(error as Error)?.stack ?? String(error)}`);
      try {
        store.transaction(() => {
          if (wroteMaps) studies.deleteVolumes(study.id, `ai:${readId}:`);
          this.deps.ledger().append({ actor, action: cancelled ? 'analysis.cancelled' : 'analysis.complete', outcome: cancelled ? 'success' : 'error', outcomeDetail: message, entityType: 'ImagingStudy', entityId: study.id, patientId: study.patientId, detail: { readId } });
        });
      } catch (auditError) {
        this.deps.log(`could not record a failed AI read: ${(auditError as Error).message}`);
      }
      update({ state: cancelled ? 'cancelled' : 'failed', stage: cancelled ? 'cancelled' : 'failed', message, error: cancelled ? null : message });
    }
  }

  private studyDescription(studyId: string): string {
    return new StudiesRepository(this.deps.store.db, this.deps.now).get(studyId)?.description ?? '';
  }

  private resourceList(resources: { report: DiagnosticReport; device: ReportResources['device']; observations: Observation[]; media: ReportResources['media'] }): Resource[] {
    return [resources.report, resources.device, ...resources.observations, ...(resources.media ? [resources.media] : [])];
  }

  forStudy(studyId: string): AiRead[] {
    return this.reads().forStudy(studyId);
  }

  get(readId: string): AiRead | null {
    return this.reads().get(readId);
  }

  /** The report's resources as last queued (DiagnosticReport first). */
  reportOf(readId: string): Resource[] {
    const resources = this.reads().resources(readId);
    if (!resources) throw new NwError('not-found', 'No such AI read.');
    return resources;
  }

  /**
   * The radiologist's decision: the decision, the report's FHIR updates and the physicians'
   * notification and Communication, in one transaction (the caller's, whose audit entry gets `audit`).
   */
  decide(
    readId: string,
    input: { decision: 'confirm' | 'amend' | 'reject'; comment: string; conclusion?: string | undefined; finding?: AiRead['finding'] | undefined },
    actor: AuditActor & { displayName: string },
  ): { read: AiRead; audit: Record<string, unknown> } {
    const { store, now } = this.deps;
    const kind = ({ confirm: 'confirmed', amend: 'amended', reject: 'rejected' } as const)[input.decision];
    const { read, notified } = store.transaction(() => {
      const repo = this.reads();
      const before = repo.resources(readId);
      const decided = repo.decide(readId, { kind, by: { userId: actor.userId, username: actor.username }, comment: input.comment, conclusion: input.conclusion, finding: input.finding });
      const report = before?.find((r): r is DiagnosticReport => r.resourceType === 'DiagnosticReport');
      const observations = (before ?? []).filter((r): r is Observation => r.resourceType === 'Observation');
      if (!report) throw new NwError('store-corrupted', `The AI read ${readId} has no stored report.`);
      const by = `${actor.displayName} (radiologist)`;
      const next = decidedReport({ report, observations }, { status: STATUS_OF_DECISION[kind], by, comment: input.comment, conclusion: input.conclusion, at: now() });
      const outbox = new ValidatingOutbox(new Outbox(store.db, now), this.deps.validator);
      for (const o of next.observations) outbox.enqueue('update', o as Observation & { id: string });
      outbox.enqueue('update', next.report as DiagnosticReport & { id: string });
      repo.replaceResources(readId, [next.report, ...(before ?? []).filter((r) => r.resourceType !== 'DiagnosticReport' && r.resourceType !== 'Observation'), ...next.observations]);
      const finalFinding = kind === 'amended' ? input.finding : kind === 'confirmed' ? decided.finding : null;
      let notified = false;
      if (finalFinding === 'suspected') {
        const patient = new PatientsRepository(store.db, now).get(decided.patientId);
        const who = patient ? `${patient.givenName} ${patient.familyName} (MRN ${patient.mrn})` : 'a patient';
        const finding = (kind === 'amended' ? (input.conclusion ?? '') : decided.conclusion.split('. AI-generated')[0]!).replace(/[.\s]+$/, '');
        const text = `${by} ${kind} an AI-suspected brain lesion for ${who}: ${finding}. Comment: ${input.comment}`;
        new NotificationsRepository(store.db, now).add({ role: 'physician', kind: 'ai-read.lesion-confirmed', title: `Suspected lesion ${kind} for ${who}`, body: text, patientId: decided.patientId, subject: { type: 'DiagnosticReport', id: readId } });
        const communication: Communication & { id: string } = {
          resourceType: 'Communication',
          id: randomUUID(),
          status: 'completed',
          category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/communication-category', code: 'alert', display: 'Alert' }] }],
          priority: 'urgent',
          subject: { reference: `Patient/${decided.patientId}` },
          about: [{ reference: `DiagnosticReport/${readId}` }],
          sent: now().toISOString(),
          sender: { display: by },
          recipient: [{ display: "The patient's physicians (NeuroWard in-app inbox)" }],
          payload: [{ contentString: text }],
        };
        outbox.enqueue('create', communication);
        notified = true;
      }
      return { read: decided, notified };
    });
    // After the caller's commit (this runs inside its transaction): the inbox then reads what was written.
    if (notified) setImmediate(() => this.deps.notifyRole('physician', new NotificationsRepository(store.db, now).unread('physician')));
    return {
      read,
      audit: { decision: kind, status: read.status, comment: input.comment, ...(kind === 'amended' ? { finding: input.finding, conclusion: input.conclusion } : {}), aiFinding: read.finding, physiciansNotified: notified },
    };
  }

  idle(): Promise<void> {
    return this.queue;
  }
}
