/**
 * AI reads in the store (migration 13): the model's finding as it was, the radiologist's decision
 * beside it, and the in-app notifications that decisions raise. Callers run writes inside the
 * transaction that audits them and queues their FHIR resources.
 */
import { randomUUID } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import type { AiCluster, AiRead, AiRegion, Notification } from '../../shared/ipc.js';
import { NwError } from '../../shared/errors.js';
import { StatementOwner } from '../store/statements.js';

/** What result_json holds: the parts of an AiRead that are not columns. */
export interface StoredReadDetail {
  regions: AiRegion[];
  clusters: AiCluster[];
  slices: AiRead['slices'];
  stages: AiRead['stages'];
  backendDetail: string;
  skippedBackends: AiRead['backend']['skipped'];
  prior: AiRead['prior'];
}

export interface NewRead {
  id: string;
  studyId: string;
  patientId: string;
  createdBy: { userId: string; username: string };
  model: AiRead['model'];
  backend: string;
  finding: AiRead['finding'];
  probability: number;
  threshold: number;
  conclusion: string;
  detail: StoredReadDetail;
  /** The FHIR resources queued for it. */
  resources: Resource[];
}

interface ReadRow {
  id: string;
  study_id: string;
  patient_id: string;
  created_at: string;
  created_by: string;
  model_name: string;
  model_version: string;
  model_hash: string;
  backend: string;
  finding: AiRead['finding'];
  probability: number;
  threshold: number;
  conclusion: string;
  result_json: string;
  status: AiRead['status'];
  decision: 'confirmed' | 'amended' | 'rejected' | null;
  decided_at: string | null;
  decided_by: string | null;
  decision_comment: string | null;
  amended_conclusion: string | null;
  amended_finding: AiRead['finding'] | null;
  report_version: number;
}

function toRead(row: ReadRow): AiRead {
  const detail = JSON.parse(row.result_json) as StoredReadDetail;
  return {
    id: row.id,
    studyId: row.study_id,
    patientId: row.patient_id,
    createdAt: row.created_at,
    createdBy: row.created_by,
    model: { name: row.model_name, version: row.model_version, hash: row.model_hash },
    backend: { name: row.backend, detail: detail.backendDetail, skipped: detail.skippedBackends },
    finding: row.finding,
    probability: row.probability,
    threshold: row.threshold,
    conclusion: row.conclusion,
    regions: detail.regions,
    clusters: detail.clusters,
    slices: detail.slices,
    stages: detail.stages,
    status: row.status,
    decision:
      row.decision && row.decided_at
        ? { kind: row.decision, at: row.decided_at, by: row.decided_by ?? '', comment: row.decision_comment ?? '', conclusion: row.amended_conclusion, finding: row.amended_finding }
        : null,
    prior: detail.prior,
    reportId: row.id,
  };
}

/** The FHIR status each decision gives the report. */
export const STATUS_OF_DECISION = { confirmed: 'final', amended: 'amended', rejected: 'entered-in-error' } as const;

export class AiReadsRepository extends StatementOwner {
  insert(read: NewRead): AiRead {
    this.sql(
      `INSERT INTO ai_reads (id, study_id, patient_id, created_at, created_by, created_by_user_id, model_name, model_version, model_hash, backend,
         finding, probability, threshold, conclusion, result_json, resources_json, status)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'preliminary')`,
    ).run(
      read.id,
      read.studyId,
      read.patientId,
      this.now().toISOString(),
      read.createdBy.username,
      read.createdBy.userId,
      read.model.name,
      read.model.version,
      read.model.hash,
      read.backend,
      read.finding,
      read.probability,
      read.threshold,
      read.conclusion,
      JSON.stringify(read.detail),
      JSON.stringify(read.resources),
    );
    return this.get(read.id)!;
  }

  /** The report's FHIR resources as last queued; null when there is no such read. */
  resources(id: string): Resource[] | null {
    const row = this.sql('SELECT resources_json FROM ai_reads WHERE id = ?').get(id) as { resources_json: string } | undefined;
    return row ? (JSON.parse(row.resources_json) as Resource[]) : null;
  }

  replaceResources(id: string, resources: Resource[]): void {
    this.sql('UPDATE ai_reads SET resources_json = ? WHERE id = ?').run(JSON.stringify(resources), id);
  }

  get(id: string): AiRead | null {
    const row = this.sql('SELECT * FROM ai_reads WHERE id = ?').get(id) as ReadRow | undefined;
    return row ? toRead(row) : null;
  }

  /** A study's reads, newest first. */
  forStudy(studyId: string): AiRead[] {
    return (this.sql('SELECT * FROM ai_reads WHERE study_id = ? ORDER BY created_at DESC, rowid DESC').all(studyId) as ReadRow[]).map(toRead);
  }

  /**
   * The newest read, not rejected, of this patient's most recent other study imported before `before`:
   * what a new read's changes are measured against.
   */
  priorFor(patientId: string, studyId: string, before: string): AiRead | null {
    const row = this.sql(
      `SELECT r.* FROM ai_reads r JOIN imaging_studies s ON s.id = r.study_id
        WHERE r.patient_id = ? AND r.study_id <> ? AND r.status <> 'entered-in-error' AND s.created_at < ?
        ORDER BY s.created_at DESC, r.created_at DESC LIMIT 1`,
    ).get(patientId, studyId, before) as ReadRow | undefined;
    return row ? toRead(row) : null;
  }

  /** Records the one decision a read gets; a second one is a conflict (a new read is the way to revisit). */
  decide(id: string, decision: { kind: 'confirmed' | 'amended' | 'rejected'; by: { userId: string; username: string }; comment: string; conclusion?: string | undefined; finding?: AiRead['finding'] | undefined }): AiRead {
    const done = this.sql(
      `UPDATE ai_reads SET status = ?, decision = ?, decided_at = ?, decided_by = ?, decided_by_user_id = ?, decision_comment = ?,
         amended_conclusion = ?, amended_finding = ?, report_version = report_version + 1
       WHERE id = ? AND decision IS NULL`,
    ).run(
      STATUS_OF_DECISION[decision.kind],
      decision.kind,
      this.now().toISOString(),
      decision.by.username,
      decision.by.userId,
      decision.comment,
      decision.kind === 'amended' ? (decision.conclusion ?? null) : null,
      decision.kind === 'amended' ? (decision.finding ?? null) : null,
      id,
    );
    if (done.changes !== 1) {
      const read = this.get(id);
      if (!read) throw new NwError('not-found', 'No such AI read.');
      throw new NwError('conflict', `This read was already ${read.decision?.kind ?? 'decided'} by ${read.decision?.by ?? 'someone'} at ${read.decision?.at ?? '?'}; run a new read to revisit it.`);
    }
    return this.get(id)!;
  }
}

interface NotificationRow {
  id: string;
  created_at: string;
  kind: string;
  title: string;
  body: string;
  patient_id: string | null;
  subject_type: string | null;
  subject_id: string | null;
  read_at: string | null;
}

const toNotification = (row: NotificationRow): Notification => ({
  id: row.id,
  createdAt: row.created_at,
  kind: row.kind,
  title: row.title,
  body: row.body,
  patientId: row.patient_id,
  subject: row.subject_type && row.subject_id ? { type: row.subject_type, id: row.subject_id } : null,
  readAt: row.read_at,
});

export class NotificationsRepository extends StatementOwner {
  add(input: { role: string; kind: string; title: string; body: string; patientId: string | null; subject: { type: string; id: string } | null }): Notification {
    const id = randomUUID();
    this.sql('INSERT INTO notifications (id, created_at, recipient_role, patient_id, kind, title, body, subject_type, subject_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      id,
      this.now().toISOString(),
      input.role,
      input.patientId,
      input.kind,
      input.title,
      input.body,
      input.subject?.type ?? null,
      input.subject?.id ?? null,
    );
    return toNotification(this.sql('SELECT * FROM notifications WHERE id = ?').get(id) as NotificationRow);
  }

  forRole(role: string, limit: number): { notifications: Notification[]; unread: number } {
    const rows = this.sql('SELECT * FROM notifications WHERE recipient_role = ? ORDER BY created_at DESC, rowid DESC LIMIT ?').all(role, limit) as NotificationRow[];
    return { notifications: rows.map(toNotification), unread: this.unread(role) };
  }

  unread(role: string): number {
    return (this.sql('SELECT count(*) AS n FROM notifications WHERE recipient_role = ? AND read_at IS NULL').get(role) as { n: number }).n;
  }

  /** Marks it read (first reader wins; later calls return it unchanged). Only the role it was sent to may. */
  markRead(id: string, role: string, userId: string): Notification {
    this.sql('UPDATE notifications SET read_at = ?, read_by_user_id = ? WHERE id = ? AND recipient_role = ? AND read_at IS NULL').run(this.now().toISOString(), userId, id, role);
    const row = this.sql('SELECT * FROM notifications WHERE id = ? AND recipient_role = ?').get(id, role) as NotificationRow | undefined;
    if (!row) throw new NwError('not-found', 'No such notification for your role.');
    return toNotification(row);
  }
}
