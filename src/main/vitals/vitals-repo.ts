/**
 * The vitals time series (migration 3): accepted readings, raw for N days (default 7), and per bed,
 * per patient, per minute aggregates for 90 days.
 *
 * `storeBatch` writes readings in ONE transaction together with, optionally, their audit entries, and
 * the mark of each reading's patient minute for the outbox (vitals_bundles_pending, migration 4).
 * `queueMinuteBundles` turns each marked minute, once it has ended (+ MINUTE_GRACE_MS for stragglers),
 * into its outbox Bundle (see observations.ts) and removes the mark, in one transaction; a reading that
 * arrives later for that minute marks it again and the bundle is amended or re-queued. Why not the
 * Bundle itself with each reading: a bundle is ~7.4 KB of encrypted JSON; writing it per reading
 * cost ~0.3 ms each (most of it encrypting and writing pages at commit), and even once per patient
 * minute at its first reading it piled ~0.6 s of work into the first second of every minute at 2000
 * beds, delaying alarms. A crash between the reading and its bundle loses nothing: the mark is
 * committed with the reading. `store` is a batch of one. UNIQUE(device_id, seq) makes a duplicate impossible to store twice, also across restarts and under
 * a race between connections; a duplicate is recognised for as long as the raw reading is kept (the
 * retention window).
 *
 * `downsample` and `applyRetention` are for the app to call periodically (e.g. every few minutes and
 * hourly): downsampling recomputes each minute touched since the last run from the raw readings, so
 * readings that arrive late (queued during a link loss) are aggregated too; retention downsamples
 * first, so no raw reading is deleted before it is counted in its minute.
 */
import type { Db, Statement } from '../store/database.js';
import { StatementCache } from '../store/statements.js';
import { Outbox } from '../store/outbox.js';
import type { AuditLedger } from '../security/audit-ledger.js';
import type { VitalsPayload } from './payload.js';
import { minuteOf, vitalsBundleId, vitalsMinuteBundle } from './observations.js';
import { attributeReading, type Attribution, type BedOccupancy, type PatientConflict } from './occupancy.js';

export const DEFAULT_RAW_RETENTION_DAYS = 7;
export const DEFAULT_AGGREGATE_RETENTION_DAYS = 90;
const DAY_MS = 86_400_000;

export type Acvpu = 'A' | 'C' | 'V' | 'P' | 'U';

export interface BedRef {
  ward: string;
  bed: string;
}

export interface StoredReading {
  id: number;
  ward: string;
  bed: string;
  deviceId: string;
  seq: number;
  patientRef: string | null;
  /** Device time, normalized to UTC ISO 8601 with milliseconds. */
  ts: string;
  receivedAt: string;
  hr: number | null;
  spo2: number | null;
  rr: number | null;
  tempC: number | null;
  sbp: number | null;
  dbp: number | null;
  acvpu: Acvpu | null;
  o2: boolean | null;
  fault: string | null;
  /** What the monitor named when it conflicts with the admissions (see occupancy.ts), else null. */
  monitorPatientRef: string | null;
  patientConflict: PatientConflict | null;
}

export type StoreResult =
  | { status: 'stored'; reading: StoredReading }
  | { status: 'duplicate' };

/** A batch member's outcome: `refused` when the table's checks (SQLITE_CONSTRAINT) turned it down. */
export type BatchOutcome = StoreResult | { status: 'refused'; error: Error };

export interface IncomingReading {
  bed: BedRef;
  payload: VitalsPayload;
}

const INSERT_READING = `INSERT INTO vitals_readings (ward, bed, device_id, seq, patient_ref, ts, received_at, hr, spo2, rr, temp_c, sbp, dbp, acvpu, o2, fault, monitor_patient_ref, patient_conflict)
  VALUES (@ward, @bed, @device_id, @seq, @patient_ref, @ts, @received_at, @hr, @spo2, @rr, @temp_c, @sbp, @dbp, @acvpu, @o2, @fault, @monitor_patient_ref, @patient_conflict)
  ON CONFLICT (device_id, seq) DO NOTHING`;

export interface MinuteAggregate {
  ward: string;
  bed: string;
  /** '' when the readings named no patient. */
  patientRef: string;
  /** UTC minute, 'YYYY-MM-DDTHH:MM'. */
  minute: string;
  n: number;
  hr: Stat | null;
  spo2: Stat | null;
  rr: Stat | null;
  tempC: Stat | null;
  sbp: Stat | null;
  dbp: Stat | null;
  acvpuWorst: Acvpu | null;
  o2Any: boolean | null;
  faults: number;
}
/** One bed-minute of a patient's readings (VitalsRepo.patientMinutes): the minute's latest reading. */
export interface PatientMinute {
  /** UTC minute, 'YYYY-MM-DDTHH:MM'. */
  minute: string;
  ward: string;
  bed: string;
  patientRef: string;
  ts: string;
  hr: number | null;
  spo2: number | null;
  rr: number | null;
  tempC: number | null;
  sbp: number | null;
  dbp: number | null;
  acvpu: Acvpu | null;
  o2: boolean | null;
  /** Readings in that minute. */
  n: number;
  /** Of which the monitor named another patient. */
  conflicts: number;
}

export interface Stat {
  min: number;
  max: number;
  avg: number;
}

interface ReadingRow {
  id: number;
  ward: string;
  bed: string;
  device_id: string;
  seq: number;
  patient_ref: string | null;
  ts: string;
  received_at: string;
  hr: number | null;
  spo2: number | null;
  rr: number | null;
  temp_c: number | null;
  sbp: number | null;
  dbp: number | null;
  acvpu: Acvpu | null;
  o2: number | null;
  fault: string | null;
  monitor_patient_ref: string | null;
  patient_conflict: PatientConflict | null;
}

function toReading(row: ReadingRow): StoredReading {
  return {
    id: row.id,
    ward: row.ward,
    bed: row.bed,
    deviceId: row.device_id,
    seq: row.seq,
    patientRef: row.patient_ref,
    ts: row.ts,
    receivedAt: row.received_at,
    hr: row.hr,
    spo2: row.spo2,
    rr: row.rr,
    tempC: row.temp_c,
    sbp: row.sbp,
    dbp: row.dbp,
    acvpu: row.acvpu,
    o2: row.o2 === null ? null : row.o2 === 1,
    fault: row.fault,
    monitorPatientRef: row.monitor_patient_ref,
    patientConflict: row.patient_conflict,
  };
}

const STAT_COLUMNS = ['hr', 'spo2', 'rr', 'temp_c', 'sbp', 'dbp'] as const;
/** A minute's bundle is rewritten this long after the minute ended, for readings still on their way. */
export const MINUTE_GRACE_MS = 5000;

/** Bounds of a minute for a range scan on normalized `ts` (':60' sorts after every ':SS.sssZ'). */
function minuteRange(minute: string): [string, string] {
  return [`${minute}:00`, `${minute}:60`];
}

export interface VitalsRepoOptions {
  /** When given, each stored reading also appends an audit entry (action `vitals.reading.create`) in the same transaction. */
  audit?: AuditLedger | null;
  /**
   * Who is in each bed (the admissions): a reading is stored under the patient admitted to its bed at
   * its time (occupancy.ts). Without it, under the patient the monitor names, as before admissions.
   */
  occupancy?: BedOccupancy | null;
}

export class VitalsRepo {
  private readonly outbox: Outbox;
  private readonly audit: AuditLedger | null;
  private readonly occupancy: BedOccupancy | null;
  private statements: StatementCache | null = null;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
    options: VitalsRepoOptions = {},
  ) {
    this.outbox = new Outbox(db, now);
    this.audit = options.audit ?? null;
    this.occupancy = options.occupancy ?? null;
  }

  /**
   * Stores one validated reading like `storeBatch`; a reading the store's checks refuse throws their
   * SQLITE_CONSTRAINT error.
   */
  store(bed: BedRef, payload: VitalsPayload, receivedAt: Date = this.now()): StoreResult {
    const [outcome] = this.storeBatch([{ bed, payload }], receivedAt);
    if (!outcome) throw new Error('vitals store: no outcome for the reading');
    if (outcome.status === 'refused') throw outcome.error;
    return outcome;
  }

  /**
   * Stores validated readings in ONE immediate transaction, each with its audit entry (optional) and
   * its patient minute's mark for the outbox (see the top of this file). A (deviceId, seq) already stored (earlier or in this batch)
   * answers `duplicate`; a reading the table's checks refuse answers `refused` (SQLite undoes that
   * one statement only) and the others are stored. Any other failure rolls the whole batch back and
   * throws: nothing of it is stored, so none of it may be acknowledged.
   */
  storeBatch(readings: readonly IncomingReading[], receivedAt: Date = this.now()): BatchOutcome[] {
    const received = receivedAt.toISOString();
    const write = this.db.transaction((): BatchOutcome[] => {
      const outcomes: BatchOutcome[] = [];
      for (const { bed, payload } of readings) {
        const ts = new Date(payload.ts).toISOString();
        const minute = minuteOf(ts);
        const attribution: Attribution = attributeReading(this.occupancy, `${bed.ward}/${bed.bed}`, payload.patient, Date.parse(ts));
        const patientRef = attribution.patientRef;
        let info: { changes: number; lastInsertRowid: number | bigint };
        try {
          info = this.statement(INSERT_READING).run({
            ward: bed.ward,
            bed: bed.bed,
            device_id: payload.deviceId,
            seq: payload.seq,
            patient_ref: patientRef,
            ts,
            received_at: received,
            hr: payload.hr ?? null,
            spo2: payload.spo2 ?? null,
            rr: payload.rr ?? null,
            temp_c: payload.tempC ?? null,
            sbp: payload.sbp ?? null,
            dbp: payload.dbp ?? null,
            acvpu: payload.acvpu ?? null,
            o2: payload.o2 === undefined ? null : payload.o2 ? 1 : 0,
            fault: payload.fault ?? null,
            monitor_patient_ref: attribution.monitorPatientRef,
            patient_conflict: attribution.conflict,
          });
        } catch (error) {
          if (!String((error as { code?: unknown }).code ?? '').startsWith('SQLITE_CONSTRAINT')) throw error;
          outcomes.push({ status: 'refused', error: error as Error });
          continue;
        }
        if (info.changes === 0) {
          outcomes.push({ status: 'duplicate' });
          continue;
        }
        const reading = toReading(this.statement('SELECT * FROM vitals_readings WHERE id = ?').get(info.lastInsertRowid) as ReadingRow);
        this.statement('INSERT OR IGNORE INTO vitals_minutes_pending (ward, bed, patient_ref, minute) VALUES (?, ?, ?, ?)').run(bed.ward, bed.bed, patientRef ?? '', minute);
        this.audit?.append({
          actor: null,
          action: 'vitals.reading.create',
          channel: 'mqtt',
          outcome: 'success',
          entityType: 'VitalsReading',
          entityId: `${payload.deviceId}:${payload.seq}`,
          patientId: patientRef?.startsWith('Patient/') ? patientRef.slice('Patient/'.length) : null,
          detail: { ward: bed.ward, bed: bed.bed, ts, ...(patientRef?.startsWith('mrn:') ? { patient: patientRef } : {}) },
        });
        if (patientRef) this.statement('INSERT OR IGNORE INTO vitals_bundles_pending (patient_ref, minute) VALUES (?, ?)').run(patientRef, minute);
        outcomes.push({ status: 'stored', reading });
      }
      return outcomes;
    });
    return write.immediate();
  }

  private statement(sql: string): Statement {
    return (this.statements ??= new StatementCache(this.db)).get(sql);
  }

  /** Marked patient minutes that ended at least MINUTE_GRACE_MS ago: their bundles are due. */
  dueMinuteBundles(): number {
    return (this.statement('SELECT count(*) AS n FROM vitals_bundles_pending WHERE minute <= ?').get(this.closedMinuteCutoff()) as { n: number }).n;
  }

  /**
   * Queues (or amends, while still pending) the outbox bundles of due patient minutes, each built
   * once from the minute's stored readings: at most `limit`, oldest first, in one transaction, so that
   * the caller can spread a large ward's minute (~0.3 ms each) over time. Returns how many.
   */
  queueMinuteBundles(limit = 200): number {
    const cutoff = this.closedMinuteCutoff();
    return this.db.transaction(() => {
      const due = this.statement('SELECT patient_ref, minute FROM vitals_bundles_pending WHERE minute <= ? ORDER BY minute LIMIT ?').all(cutoff, limit) as {
        patient_ref: string;
        minute: string;
      }[];
      for (const { patient_ref, minute } of due) {
        this.queueMinuteBundle(patient_ref, minute);
        this.statement('DELETE FROM vitals_bundles_pending WHERE minute = ? AND patient_ref = ?').run(minute, patient_ref);
      }
      return due.length;
    }).immediate();
  }

  private closedMinuteCutoff(): string {
    return minuteOf(new Date(this.now().getTime() - 60_000 - MINUTE_GRACE_MS).toISOString());
  }

  /** Rebuilds the patient's minute bundle from the stored readings; amends the pending outbox row or queues a new one. */
  private queueMinuteBundle(patientRef: string, minute: string): 'queued' | 'amended' | 'none' {
    const [from, to] = minuteRange(minute);
    const rows = this.statement('SELECT * FROM vitals_readings WHERE patient_ref = ? AND ts >= ? AND ts < ? ORDER BY ts, id').all(patientRef, from, to) as ReadingRow[];
    const bundle = vitalsMinuteBundle(rows.map(toReading), patientRef, minute, this.now());
    if (!bundle) return 'none';
    const pending = this.statement(`SELECT id FROM outbox WHERE resource_type = 'Bundle' AND resource_id = ? AND attempts = 0 AND last_error IS NULL ORDER BY id DESC LIMIT 1`).get(
      vitalsBundleId(patientRef, minute),
    ) as { id: number } | undefined;
    if (pending) {
      this.statement('UPDATE outbox SET resource_json = ? WHERE id = ?').run(JSON.stringify(bundle), pending.id);
      return 'amended';
    }
    this.outbox.enqueue('create', bundle);
    return 'queued';
  }

  isStored(deviceId: string, seq: number): boolean {
    return this.db.prepare('SELECT 1 FROM vitals_readings WHERE device_id = ? AND seq = ?').get(deviceId, seq) !== undefined;
  }

  count(filter: { deviceId?: string } = {}): number {
    const row = filter.deviceId
      ? this.db.prepare('SELECT count(*) AS n FROM vitals_readings WHERE device_id = ?').get(filter.deviceId)
      : this.db.prepare('SELECT count(*) AS n FROM vitals_readings').get();
    return (row as { n: number }).n;
  }

  /** Readings, oldest first (by device time). */
  readings(filter: { ward?: string; bed?: string; deviceId?: string; since?: string; limit?: number } = {}): StoredReading[] {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit ?? -1 };
    if (filter.ward !== undefined) {
      where.push('ward = @ward');
      params.ward = filter.ward;
    }
    if (filter.bed !== undefined) {
      where.push('bed = @bed');
      params.bed = filter.bed;
    }
    if (filter.deviceId !== undefined) {
      where.push('device_id = @deviceId');
      params.deviceId = filter.deviceId;
    }
    if (filter.since !== undefined) {
      where.push('ts >= @since');
      params.since = new Date(filter.since).toISOString();
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const rows = this.db.prepare(`SELECT * FROM vitals_readings ${clause} ORDER BY ts, id LIMIT @limit`).all(params) as ReadingRow[];
    return rows.map(toReading);
  }

  /** The latest reading of a bed (by device time), or null. */
  latest(bed: BedRef): StoredReading | null {
    const row = this.db.prepare('SELECT * FROM vitals_readings WHERE ward = ? AND bed = ? ORDER BY ts DESC, id DESC LIMIT 1').get(bed.ward, bed.bed) as ReadingRow | undefined;
    return row ? toReading(row) : null;
  }

  /**
   * A patient's readings since `since`, across beds, one per bed and minute (the latest reading of that
   * minute, as the board's trend shows it), oldest first: at most `limit` minutes (the newest). `refs`
   * are the references the patient's readings may be stored under (`Patient/<id>`, `mrn:<MRN>`).
   * `conflicts`: readings of that minute whose monitor named someone else (occupancy.ts).
   */
  patientMinutes(refs: readonly string[], since: string, limit: number): { minutes: PatientMinute[]; truncated: boolean } {
    if (refs.length === 0) return { minutes: [], truncated: false };
    const marks = refs.map(() => '?').join(', ');
    // One max() and no other min()/max(): SQLite takes the bare columns from the row holding the max.
    const rows = this.db
      .prepare(
        `SELECT ward, bed, max(ts) AS ts, substr(ts, 1, 16) AS minute, patient_ref, hr, spo2, rr, temp_c, sbp, dbp, acvpu, o2, count(*) AS n, sum(patient_conflict IS NOT NULL) AS conflicts
         FROM vitals_readings WHERE patient_ref IN (${marks}) AND ts >= ?
         GROUP BY substr(ts, 1, 16), ward, bed ORDER BY minute DESC, ward, bed LIMIT ?`,
      )
      .all(...refs, new Date(since).toISOString(), limit + 1) as (Omit<ReadingRow, 'id' | 'device_id' | 'seq' | 'received_at' | 'fault' | 'monitor_patient_ref' | 'patient_conflict'> & {
      minute: string;
      n: number;
      conflicts: number;
    })[];
    const truncated = rows.length > limit;
    const minutes = rows
      .slice(0, limit)
      .reverse()
      .map((r) => ({
        minute: r.minute,
        ward: r.ward,
        bed: r.bed,
        patientRef: r.patient_ref ?? '',
        ts: r.ts,
        hr: r.hr,
        spo2: r.spo2,
        rr: r.rr,
        tempC: r.temp_c,
        sbp: r.sbp,
        dbp: r.dbp,
        acvpu: r.acvpu,
        o2: r.o2 === null ? null : r.o2 === 1,
        n: r.n,
        conflicts: r.conflicts,
      }));
    return { minutes, truncated };
  }

  /**
   * Recomputes the per-minute aggregates of every minute touched since the last run, from the raw
   * readings. Returns how many minutes were (re)written.
   */
  downsample(): number {
    const stats = STAT_COLUMNS.map((c) => `min(r.${c}), max(r.${c}), avg(r.${c})`).join(', ');
    const statNames = STAT_COLUMNS.map((c) => `${c}_min, ${c}_max, ${c}_avg`).join(', ');
    return this.db.transaction(() => {
      const info = this.db
        .prepare(
          `INSERT OR REPLACE INTO vitals_minutes (ward, bed, patient_ref, minute, n, ${statNames}, acvpu_worst, o2_any, faults)
           SELECT p.ward, p.bed, p.patient_ref, p.minute, count(*), ${stats},
                  substr('ACVPU', max(instr('ACVPU', r.acvpu)), 1), max(r.o2), count(r.fault)
           FROM vitals_minutes_pending p
           JOIN vitals_readings r
             ON r.ward = p.ward AND r.bed = p.bed AND coalesce(r.patient_ref, '') = p.patient_ref
            AND r.ts >= p.minute || ':00' AND r.ts < p.minute || ':60'
           GROUP BY p.ward, p.bed, p.patient_ref, p.minute`,
        )
        .run();
      this.db.prepare('DELETE FROM vitals_minutes_pending').run();
      return info.changes;
    })();
  }

  /**
   * Deletes raw readings received more than `rawDays` ago (after downsampling what is pending) and
   * minute aggregates older than `aggregateDays`.
   */
  applyRetention(options: { rawDays?: number; aggregateDays?: number } = {}): { downsampled: number; rawDeleted: number; minutesDeleted: number } {
    const rawDays = options.rawDays ?? DEFAULT_RAW_RETENTION_DAYS;
    const aggregateDays = options.aggregateDays ?? DEFAULT_AGGREGATE_RETENTION_DAYS;
    if (!(rawDays > 0) || !(aggregateDays > 0)) throw new Error('vitals retention: the number of days must be positive');
    const downsampled = this.downsample();
    const now = this.now().getTime();
    const rawCutoff = new Date(now - rawDays * DAY_MS).toISOString();
    const minuteCutoff = new Date(now - aggregateDays * DAY_MS).toISOString().slice(0, 16);
    return this.db.transaction(() => {
      const rawDeleted = this.db.prepare('DELETE FROM vitals_readings WHERE received_at < ?').run(rawCutoff).changes;
      const minutesDeleted = this.db.prepare('DELETE FROM vitals_minutes WHERE minute < ?').run(minuteCutoff).changes;
      return { downsampled, rawDeleted, minutesDeleted };
    })();
  }

  minutes(filter: { ward: string; bed: string; from?: string; to?: string }): MinuteAggregate[] {
    const rows = this.db
      .prepare('SELECT * FROM vitals_minutes WHERE ward = ? AND bed = ? AND minute >= ? AND minute <= ? ORDER BY minute, patient_ref')
      .all(filter.ward, filter.bed, filter.from ?? '', filter.to ?? '9999') as Record<string, unknown>[];
    const stat = (row: Record<string, unknown>, c: (typeof STAT_COLUMNS)[number]): Stat | null =>
      row[`${c}_min`] === null ? null : { min: row[`${c}_min`] as number, max: row[`${c}_max`] as number, avg: row[`${c}_avg`] as number };
    return rows.map((row) => ({
      ward: row.ward as string,
      bed: row.bed as string,
      patientRef: row.patient_ref as string,
      minute: row.minute as string,
      n: row.n as number,
      hr: stat(row, 'hr'),
      spo2: stat(row, 'spo2'),
      rr: stat(row, 'rr'),
      tempC: stat(row, 'temp_c'),
      sbp: stat(row, 'sbp'),
      dbp: stat(row, 'dbp'),
      acvpuWorst: (row.acvpu_worst as Acvpu | null) || null,
      o2Any: row.o2_any === null ? null : row.o2_any === 1,
      faults: row.faults as number,
    }));
  }
}
