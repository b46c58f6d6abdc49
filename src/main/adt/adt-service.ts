/**
 * ADT: who is in which bed (admissions-repo.ts in the store), and for the ward (vitals/occupancy.ts's
 * BedOccupancy, which this implements; the composition root hands it over) whose readings a bed's are.
 *
 * Admit, transfer and discharge run in the caller's transaction (the dispatcher's, with the call's
 * audit entry). The ward reads the admissions from an in-memory index, since every reading asks (2000
 * beds at 1 Hz: ~1 µs a reading): built from the store at first use (~0.1 ms a stay), and refreshed
 * from the store for the beds and patients concerned right after each change has committed (a
 * microtask after the synchronous transaction; a rolled-back change is thus never in it), and the
 * listeners (`onChange`) hear which beds changed. The index holds the open stays and those ended in the
 * last INDEX_DAYS (readings arrive late after a link loss); an older time is looked up in the store.
 */
import type { AdmissionView } from '../../shared/ipc.js';
import type { Db } from '../store/database.js';
import type { BedOccupancy, BedOccupant } from '../vitals/occupancy.js';
import { AdmissionsRepo, splitBedKey, type AdtActor, type AdtPatient, type AdtPatients, type Stay } from './admissions-repo.js';

/** Ended stays kept in the index: as long as raw readings are kept (7 days), and a day more. */
const INDEX_DAYS = 8;
const DAY_MS = 86_400_000;

export interface AdtServiceOptions {
  /** The open store (throws while it is not). */
  db: () => Db;
  /** The patient records of a database (the patients domain, through the composition root). */
  patients: (db: Db) => AdtPatients;
  now: () => Date;
  log: (message: string) => void;
}

interface IndexedStay {
  fromMs: number;
  /** Infinity while open. */
  toMs: number;
  bedKey: string;
  occupant: BedOccupant;
}

interface OccupancyIndex {
  db: Db;
  /** Stays that ended before this are not in the index: the store is asked. */
  horizonMs: number;
  byBed: Map<string, IndexedStay[]>;
  byPatient: Map<string, IndexedStay[]>;
  idByMrn: Map<string, string>;
  occupied: Map<string, BedOccupant>;
}

export function patientName(patient: Pick<AdtPatient, 'givenName' | 'familyName'>): string {
  return `${patient.givenName} ${patient.familyName}`;
}

export function admissionView(stay: Stay, patient: AdtPatient | null): AdmissionView {
  return {
    id: stay.id,
    patientId: stay.patientId,
    mrn: patient?.mrn ?? '',
    name: patient ? patientName(patient) : null,
    restricted: patient?.restricted ?? false,
    synthetic: patient?.synthetic ?? false,
    bedKey: stay.bedKey,
    ward: stay.ward,
    bed: stay.bed,
    admittedAt: stay.admittedAt,
    admittedBy: stay.admittedBy,
    reason: stay.reason,
    dischargedAt: stay.dischargedAt,
    dischargedBy: stay.dischargedBy,
    endKind: stay.endKind,
    endReason: stay.endReason,
    encounterId: stay.encounterId,
  };
}

export class AdtService implements BedOccupancy {
  private index: OccupancyIndex | null = null;
  private readonly listeners = new Set<(bedKeys: string[]) => void>();
  private changedBeds = new Set<string>();
  private reloadQueued = false;

  constructor(private readonly options: AdtServiceOptions) {}

  /** The store's admissions of database `db` (first-run setup writes the demo admissions with it). */
  records(db: Db = this.options.db()): AdmissionsRepo {
    return new AdmissionsRepo(db, this.options.now, this.options.patients(db));
  }

  /** Heard after each committed change, with the beds whose patient changed. */
  onChange(listener: (bedKeys: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // -------------------------------------------------------------------------------------------
  // Changes (in the caller's transaction)
  // -------------------------------------------------------------------------------------------

  admit(patientId: string, bedKey: string, actor: AdtActor, reason?: string): AdmissionView {
    const stay = this.records().admit({ patientId, bedKey, actor, reason });
    this.changed([stay.bedKey]);
    return this.view(stay);
  }

  transfer(patientId: string, toBedKey: string, actor: AdtActor, options: { reason?: string | undefined; expectedAdmissionId?: string | undefined } = {}): { from: AdmissionView; to: AdmissionView } {
    const { from, to } = this.records().transfer({ patientId, toBedKey, actor, reason: options.reason, expectedAdmissionId: options.expectedAdmissionId });
    this.changed([from.bedKey, to.bedKey]);
    return { from: this.view(from), to: this.view(to) };
  }

  discharge(patientId: string, actor: AdtActor, options: { reason?: string | undefined; expectedAdmissionId?: string | undefined } = {}): AdmissionView {
    const stay = this.records().discharge({ patientId, actor, reason: options.reason, expectedAdmissionId: options.expectedAdmissionId });
    this.changed([stay.bedKey]);
    return this.view(stay);
  }

  // -------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------

  /** Open stays now (one ward, or all), by bed. */
  current(ward?: string): AdmissionView[] {
    return this.records()
      .open(ward)
      .sort((a, b) => a.ward.localeCompare(b.ward, undefined, { numeric: true }) || a.bed.localeCompare(b.bed, undefined, { numeric: true }))
      .map((s) => this.view(s));
  }

  /** A patient's stays, newest first, and the open one. */
  history(patientId: string): { current: AdmissionView | null; admissions: AdmissionView[] } {
    const db = this.options.db();
    const patient = this.options.patients(db).get(patientId);
    const admissions = this.records(db)
      .forPatient(patientId)
      .map((s) => admissionView(s, patient));
    return { current: admissions.find((a) => a.dischargedAt === null) ?? null, admissions };
  }

  private view(stay: Stay): AdmissionView {
    return admissionView(stay, this.options.patients(this.options.db()).get(stay.patientId));
  }

  // -------------------------------------------------------------------------------------------
  // BedOccupancy (for the ward; from the index)
  // -------------------------------------------------------------------------------------------

  occupantAt(bedKey: string, atMs: number): BedOccupant | null {
    const index = this.ensureIndex();
    if (atMs < index.horizonMs) return this.fromStore((repo) => {
      const { ward, bed } = splitBedKey(bedKey);
      return repo.coveringBed(ward, bed, new Date(atMs).toISOString());
    });
    const stays = index.byBed.get(bedKey);
    if (!stays) return null;
    for (let i = stays.length - 1; i >= 0; i--) {
      const stay = stays[i]!;
      if (stay.fromMs <= atMs && atMs < stay.toMs) return stay.occupant;
      if (stay.toMs <= atMs) break;
    }
    return null;
  }

  bedOfPatientAt(patientRef: string, atMs: number): string | null {
    const index = this.ensureIndex();
    const patientId = patientRef.startsWith('Patient/') ? patientRef.slice('Patient/'.length) : patientRef.startsWith('mrn:') ? (index.idByMrn.get(patientRef.slice(4)) ?? null) : null;
    if (atMs < index.horizonMs) {
      const id = patientId ?? (patientRef.startsWith('mrn:') ? this.idOfMrnInStore(patientRef.slice(4)) : null);
      if (!id) return null;
      return this.fromStore((repo) => repo.coveringPatient(id, new Date(atMs).toISOString()))?.bedKeyOf ?? null;
    }
    if (!patientId) return null;
    for (const stay of index.byPatient.get(patientId) ?? []) if (stay.fromMs <= atMs && atMs < stay.toMs) return stay.bedKey;
    return null;
  }

  occupied(): ReadonlyMap<string, BedOccupant> {
    return this.ensureIndex().occupied;
  }

  /** A lookup before the index's horizon (a reading days late): from the store. */
  private fromStore(find: (repo: AdmissionsRepo) => Stay | null): (BedOccupant & { bedKeyOf: string }) | null {
    const db = this.options.db();
    const stay = find(this.records(db));
    if (!stay) return null;
    const patient = this.options.patients(db).get(stay.patientId);
    return patient ? { ...this.occupant(stay, patient), bedKeyOf: stay.bedKey } : null;
  }

  private idOfMrnInStore(mrn: string): string | null {
    const row = this.options.db().prepare('SELECT id FROM patients WHERE mrn = ?').get(mrn) as { id: string } | undefined;
    return row?.id ?? null;
  }

  private occupant(stay: Stay, patient: AdtPatient): BedOccupant {
    return Object.freeze({
      admissionId: stay.id,
      patientId: patient.id,
      mrn: patient.mrn,
      name: patientName(patient),
      restricted: patient.restricted,
      synthetic: patient.synthetic,
      since: stay.admittedAt,
      by: stay.admittedBy,
    });
  }

  /** The index of the open store, built on first use and rebuilt for another store (after setup or unlock). */
  private ensureIndex(): OccupancyIndex {
    const db = this.options.db();
    if (this.index?.db === db) return this.index;
    this.index = this.build(db);
    return this.index;
  }

  /** The stays (oldest first) as the index keeps them, with their patients (looked up once each). */
  private indexed(db: Db, stays: readonly Stay[], index: OccupancyIndex): IndexedStay[] {
    const patients = this.options.patients(db);
    const cache = new Map<string, AdtPatient | null>();
    const out: IndexedStay[] = [];
    for (const stay of stays) {
      if (!cache.has(stay.patientId)) cache.set(stay.patientId, patients.get(stay.patientId));
      const patient = cache.get(stay.patientId);
      if (!patient) continue;
      index.idByMrn.set(patient.mrn, patient.id);
      out.push({
        fromMs: Date.parse(stay.admittedAt),
        toMs: stay.dischargedAt === null ? Number.POSITIVE_INFINITY : Date.parse(stay.dischargedAt),
        bedKey: stay.bedKey,
        occupant: this.occupant(stay, patient),
      });
    }
    return out;
  }

  private build(db: Db): OccupancyIndex {
    const horizonMs = this.options.now().getTime() - INDEX_DAYS * DAY_MS;
    const index: OccupancyIndex = { db, horizonMs, byBed: new Map(), byPatient: new Map(), idByMrn: new Map(), occupied: new Map() };
    const push = (map: Map<string, IndexedStay[]>, key: string, stay: IndexedStay) => {
      const list = map.get(key);
      if (list) list.push(stay);
      else map.set(key, [stay]);
    };
    for (const stay of this.indexed(db, this.records(db).since(new Date(horizonMs).toISOString()), index)) {
      push(index.byBed, stay.bedKey, stay);
      push(index.byPatient, stay.occupant.patientId, stay);
      if (stay.toMs === Number.POSITIVE_INFINITY) index.occupied.set(stay.bedKey, stay.occupant);
    }
    return index;
  }

  /** Re-reads from the store the stays of `bedKeys` and of every patient who was or is in them. */
  private refresh(index: OccupancyIndex, bedKeys: readonly string[]): void {
    const db = index.db;
    const records = this.records(db);
    const cutoff = new Date(index.horizonMs).toISOString();
    const patientIds = new Set<string>();
    for (const bedKey of bedKeys) {
      for (const stay of index.byBed.get(bedKey) ?? []) patientIds.add(stay.occupant.patientId);
      const { ward, bed } = splitBedKey(bedKey);
      const stays = this.indexed(db, records.bedSince(ward, bed, cutoff), index);
      for (const stay of stays) patientIds.add(stay.occupant.patientId);
      if (stays.length) index.byBed.set(bedKey, stays);
      else index.byBed.delete(bedKey);
      const open = stays.find((s) => s.toMs === Number.POSITIVE_INFINITY);
      if (open) index.occupied.set(bedKey, open.occupant);
      else index.occupied.delete(bedKey);
    }
    for (const patientId of patientIds) {
      const stays = this.indexed(db, records.patientSince(patientId, cutoff), index);
      if (stays.length) index.byPatient.set(patientId, stays);
      else index.byPatient.delete(patientId);
    }
  }

  /**
   * A change was written in the caller's transaction: once that has committed (the microtask runs right
   * after the dispatcher's synchronous commit or rollback), rebuild the index from the store and tell
   * the listeners which beds changed. A rolled-back change is not in the store, so not in the index.
   */
  private changed(bedKeys: string[]): void {
    for (const key of bedKeys) this.changedBeds.add(key);
    if (this.reloadQueued) return;
    this.reloadQueued = true;
    queueMicrotask(() => {
      this.reloadQueued = false;
      const beds = [...this.changedBeds];
      this.changedBeds = new Set();
      try {
        const db = this.options.db();
        if (this.index?.db === db) this.refresh(this.index, beds);
        else this.index = this.build(db);
      } catch (error) {
        // The next lookup builds it again.
        this.index = null;
        this.options.log(`adt: the admissions index could not be refreshed: ${(error as Error).message}`);
      }
      for (const listener of this.listeners) {
        try {
          listener(beds);
        } catch (error) {
          this.options.log(`adt: a listener failed: ${(error as Error).message}`);
        }
      }
    });
  }
}
