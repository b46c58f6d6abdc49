/**
 * The alarm log (migration 7, table alarm_events): every event of the ward's alarm engine — raised,
 * updated (priority raised, latched, recurred, pause expired), escalated, acknowledged, paused,
 * cleared — with the bed, the patient in it at the time, who and why (acknowledge, pause) and the
 * bed's NEWS2 at that moment; read per bed or per patient (across beds) by nurses and physicians.
 *
 * Every row is written in the transaction of its audit entry:
 *  - acknowledge and pause: inside the transaction of the `alarms.acknowledge` / `alarms.pause` call,
 *    whose audit entry the dispatcher appends (`append`, the caller's transaction);
 *  - what the engine does by itself (raise, escalate, clear…): in one transaction per turn of the event
 *    loop with one audit entry per event, actor null (the system), action `alarm.<event>`
 *    (`appendAudited`; ward-service.ts queues them).
 *
 * Kept ALARM_LOG_RETENTION_DAYS (as long as the minute aggregates of the vitals, the longest-kept
 * readings), pruned by the ward's hourly retention job.
 */
import type { ResponseOf } from '../../shared/ipc.js';
import type { Db, Statement } from '../store/database.js';
import { StatementCache } from '../store/statements.js';
import { AuditLedger } from '../security/audit-ledger.js';
import type { AlarmEvent } from './alarms.js';
import { DEFAULT_AGGREGATE_RETENTION_DAYS } from './vitals-repo.js';

export const ALARM_LOG_RETENTION_DAYS = DEFAULT_AGGREGATE_RETENTION_DAYS;
/** At most this many events in one answer (the newest; a bed raises a few a day). */
export const ALARM_LOG_MAX_EVENTS = 2000;
const DAY_MS = 86_400_000;

export type AlarmLogEvent = ResponseOf<'alarms.log'>['events'][number];
/** A row to write: everything but the id the store gives it. */
export type AlarmLogEntry = Omit<AlarmLogEvent, 'id'>;

interface AlarmEventRow {
  id: number;
  alarm_id: string;
  bed_key: string | null;
  patient_ref: string | null;
  kind: AlarmLogEvent['kind'];
  condition: string;
  priority: AlarmLogEvent['priority'];
  event: AlarmLogEvent['event'];
  detail: string | null;
  escalation_level: number;
  at: string;
  silenced_by: string | null;
  reason: string | null;
  paused_until: string | null;
  message: string;
  news2: number | null;
}

const INSERT = `INSERT INTO alarm_events (alarm_id, bed_key, patient_ref, kind, condition, priority, event, detail, escalation_level, at, silenced_by, reason, paused_until, message, news2)
  VALUES (@alarm_id, @bed_key, @patient_ref, @kind, @condition, @priority, @event, @detail, @escalation_level, @at, @silenced_by, @reason, @paused_until, @message, @news2)`;

/** The log row of one engine event; `bedKey`, the patient and the score are the ward's view at that moment. */
export function alarmLogEntry(event: AlarmEvent, context: { bedKey: string | null; patientRef: string | null; news2: number | null }): AlarmLogEntry {
  const alarm = event.alarm;
  let detail: string | null = null;
  let by: string | null = null;
  let reason: string | null = null;
  let pausedUntil: string | null = null;
  switch (event.type) {
    case 'updated':
      detail = event.change;
      break;
    case 'cleared':
      detail = event.cause;
      break;
    case 'escalated':
      detail = event.to;
      break;
    case 'acknowledged':
      by = event.by;
      reason = event.reason;
      break;
    case 'paused':
      by = event.by;
      reason = event.reason;
      pausedUntil = new Date(event.until).toISOString();
      break;
    case 'raised':
      break;
  }
  return {
    alarmId: event.alarmId,
    bedKey: context.bedKey,
    patientRef: context.patientRef,
    kind: alarm.kind,
    condition: alarm.condition,
    priority: alarm.priority,
    event: event.type,
    detail,
    escalationLevel: alarm.escalationLevel,
    at: new Date(event.at).toISOString(),
    by,
    reason,
    pausedUntil,
    message: alarm.message,
    news2: context.news2,
  };
}

function toEvent(row: AlarmEventRow): AlarmLogEvent {
  return {
    id: row.id,
    alarmId: row.alarm_id,
    bedKey: row.bed_key,
    patientRef: row.patient_ref,
    kind: row.kind,
    condition: row.condition,
    priority: row.priority,
    event: row.event,
    detail: row.detail,
    escalationLevel: row.escalation_level,
    at: row.at,
    by: row.silenced_by,
    reason: row.reason,
    pausedUntil: row.paused_until,
    message: row.message,
    news2: row.news2,
  };
}

/** The record id of a monitor's `Patient/<id>` reference, for the audit entry's patient; null for `mrn:`. */
export function patientIdOfRef(ref: string | null): string | null {
  return ref?.startsWith('Patient/') ? ref.slice('Patient/'.length) : null;
}

export class AlarmLog {
  private statements: StatementCache | null = null;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  /** Writes the rows in the caller's transaction (whose audit entry covers them). Returns their ids. */
  append(entries: readonly AlarmLogEntry[]): number[] {
    if (!this.db.inTransaction) throw new Error('AlarmLog.append must run inside the transaction of the change it records');
    const insert = this.statement(INSERT);
    return entries.map((e) =>
      Number(
        insert.run({
          alarm_id: e.alarmId,
          bed_key: e.bedKey,
          patient_ref: e.patientRef,
          kind: e.kind,
          condition: e.condition,
          priority: e.priority,
          event: e.event,
          detail: e.detail,
          escalation_level: e.escalationLevel,
          at: e.at,
          silenced_by: e.by,
          reason: e.reason,
          paused_until: e.pausedUntil,
          message: e.message,
          news2: e.news2,
        }).lastInsertRowid,
      ),
    );
  }

  /**
   * What the engine did by itself: the rows and one audit entry each (actor null: the system; action
   * `alarm.<event>`), in one transaction (nested in the caller's, if any). All or nothing.
   */
  appendAudited(entries: readonly AlarmLogEntry[]): number[] {
    if (entries.length === 0) return [];
    const ledger = new AuditLedger(this.db, this.now);
    return this.db.transaction(() => {
      const ids = this.append(entries);
      entries.forEach((e, i) => {
        ledger.append({
          actor: null,
          action: `alarm.${e.event}`,
          channel: 'alarm-engine',
          outcome: 'success',
          entityType: 'Alarm',
          entityId: e.alarmId,
          patientId: patientIdOfRef(e.patientRef),
          detail: {
            logId: ids[i],
            bed: e.bedKey,
            ...(e.patientRef?.startsWith('mrn:') ? { patient: e.patientRef } : {}),
            kind: e.kind,
            condition: e.condition,
            priority: e.priority,
            ...(e.detail !== null ? { detail: e.detail } : {}),
            escalationLevel: e.escalationLevel,
            at: e.at,
            news2: e.news2,
          },
        });
      });
      return ids;
    })();
  }

  /** Whether row `id` is in the store (committed, or written in the open transaction). */
  has(id: number): boolean {
    return this.statement('SELECT 1 FROM alarm_events WHERE id = ?').get(id) !== undefined;
  }

  /** A bed's events since `since` (ISO), with the ward-wide ones, oldest first; the newest `limit` if more. */
  forBed(bedKey: string, since: string, limit = ALARM_LOG_MAX_EVENTS): { events: AlarmLogEvent[]; truncated: boolean } {
    const rows = this.statement(
      `SELECT * FROM alarm_events WHERE (bed_key = ? OR bed_key IS NULL) AND at >= ? ORDER BY at DESC, id DESC LIMIT ?`,
    ).all(bedKey, since, limit + 1) as AlarmEventRow[];
    return this.page(rows, limit);
  }

  /** A patient's events (any of `patientRefs`, across beds) since `since`, oldest first; the newest `limit` if more. */
  forPatient(patientRefs: readonly string[], since: string, limit = ALARM_LOG_MAX_EVENTS): { events: AlarmLogEvent[]; truncated: boolean } {
    if (patientRefs.length === 0) return { events: [], truncated: false };
    const rows = this.db
      .prepare(`SELECT * FROM alarm_events WHERE patient_ref IN (${patientRefs.map(() => '?').join(', ')}) AND at >= ? ORDER BY at DESC, id DESC LIMIT ?`)
      .all(...patientRefs, since, limit + 1) as AlarmEventRow[];
    return this.page(rows, limit);
  }

  /** Deletes events older than `days` (default ALARM_LOG_RETENTION_DAYS). Returns how many. */
  applyRetention(days = ALARM_LOG_RETENTION_DAYS): number {
    if (!(days > 0)) throw new Error('alarm log retention: the number of days must be positive');
    const cutoff = new Date(this.now().getTime() - days * DAY_MS).toISOString();
    return this.db.transaction(() => this.statement('DELETE FROM alarm_events WHERE at < ?').run(cutoff).changes)();
  }

  private page(rowsNewestFirst: AlarmEventRow[], limit: number): { events: AlarmLogEvent[]; truncated: boolean } {
    const truncated = rowsNewestFirst.length > limit;
    return { events: rowsNewestFirst.slice(0, limit).reverse().map(toEvent), truncated };
  }

  private statement(sql: string): Statement {
    return (this.statements ??= new StatementCache(this.db)).get(sql);
  }
}
