/** Patient demographics. Every read and write goes through the dispatcher, which audits it. */
import { randomUUID, randomBytes } from 'node:crypto';
import type { Db } from '../store/database.js';
import type { Patient, PatientSummary } from '../../shared/ipc.js';
import { NwError } from '../../shared/errors.js';

interface PatientRow {
  id: string;
  mrn: string;
  given_name: string;
  family_name: string;
  birth_date: string;
  sex: Patient['sex'];
  restricted: number;
  synthetic: number;
  version: number;
  created_at: string;
  updated_at: string;
}

function toPatient(row: PatientRow): Patient {
  return {
    id: row.id,
    mrn: row.mrn,
    givenName: row.given_name,
    familyName: row.family_name,
    birthDate: row.birth_date,
    sex: row.sex,
    restricted: row.restricted === 1,
    synthetic: row.synthetic === 1,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface NewPatient {
  givenName: string;
  familyName: string;
  birthDate: string;
  sex: Patient['sex'];
  mrn?: string | undefined;
  restricted: boolean;
  synthetic?: boolean;
}

export class PatientsRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  get(id: string): Patient | null {
    const row = this.db.prepare('SELECT * FROM patients WHERE id = ?').get(id) as PatientRow | undefined;
    return row ? toPatient(row) : null;
  }

  /**
   * Search by name or MRN. Restricted records match on MRN only unless `seeRestricted`,
   * so a name search cannot confirm that a restricted person is here.
   */
  /** Whether the record is restricted; null when there is no such record (PatientAccess's lookup). */
  restrictedById(id: string): boolean | null {
    const row = this.db.prepare('SELECT restricted FROM patients WHERE id = ?').get(id) as { restricted: number } | undefined;
    return row ? row.restricted === 1 : null;
  }

  /** The record id behind an MRN, or null. */
  idByMrn(mrn: string): string | null {
    return (this.db.prepare('SELECT id FROM patients WHERE mrn = ?').get(mrn) as { id: string } | undefined)?.id ?? null;
  }

  search(query: string | undefined, limit: number, seeRestricted: boolean): PatientSummary[] {
    const q = query?.trim() ?? '';
    const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = (
      q
        ? this.db
            .prepare(
              `SELECT * FROM patients
               WHERE mrn LIKE @like ESCAPE '\\'
                  OR ((@seeRestricted = 1 OR restricted = 0)
                      AND (given_name LIKE @like ESCAPE '\\' OR family_name LIKE @like ESCAPE '\\' OR (given_name || ' ' || family_name) LIKE @like ESCAPE '\\'))
               ORDER BY family_name COLLATE NOCASE, given_name COLLATE NOCASE LIMIT @limit`,
            )
            .all({ like, limit, seeRestricted: seeRestricted ? 1 : 0 })
        : this.db.prepare('SELECT * FROM patients ORDER BY family_name COLLATE NOCASE, given_name COLLATE NOCASE LIMIT ?').all(limit)
    ) as PatientRow[];
    return rows.map((row) => {
      const hidden = row.restricted === 1 && !seeRestricted;
      return {
        id: row.id,
        mrn: row.mrn,
        restricted: row.restricted === 1,
        synthetic: row.synthetic === 1,
        name: hidden ? null : `${row.given_name} ${row.family_name}`,
        birthDate: hidden ? null : row.birth_date,
        sex: hidden ? null : row.sex,
      };
    });
  }

  create(input: NewPatient): Patient {
    const mrn = input.mrn ?? this.newMrn(input.synthetic ? 'SYN' : 'NW');
    if (this.db.prepare('SELECT 1 FROM patients WHERE mrn = ?').get(mrn)) throw new NwError('conflict', `MRN ${mrn} is already registered.`);
    const at = this.now().toISOString();
    const id = randomUUID();
    this.db
      .prepare(
        `INSERT INTO patients (id, mrn, given_name, family_name, birth_date, sex, restricted, synthetic, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, mrn, input.givenName, input.familyName, input.birthDate, input.sex, input.restricted ? 1 : 0, input.synthetic ? 1 : 0, at, at);
    return this.get(id)!;
  }

  /**
   * Replaces the demographics of a record with another copy's (a sync conflict resolved by taking the
   * server's copy or a merge): version + 1. `restricted` and `synthetic` are local decisions and are kept.
   * An MRN another record holds is refused, so two records never share one.
   */
  replaceDemographics(id: string, fields: Pick<Patient, 'mrn' | 'givenName' | 'familyName' | 'birthDate' | 'sex'>): Patient {
    const current = this.get(id);
    if (!current) throw new NwError('not-found', 'No such patient.');
    const holder = this.idByMrn(fields.mrn);
    if (holder && holder !== id) throw new NwError('conflict', `MRN ${fields.mrn} belongs to another record on this workstation.`);
    this.db
      .prepare('UPDATE patients SET mrn = ?, given_name = ?, family_name = ?, birth_date = ?, sex = ?, version = version + 1, updated_at = ? WHERE id = ?')
      .run(fields.mrn, fields.givenName, fields.familyName, fields.birthDate, fields.sex, this.now().toISOString(), id);
    return this.get(id)!;
  }

  /**
   * A copy of the record pulled from a FHIR server (fhir/sync/pull.ts), kept under the server's id:
   * created when new, else its demographics replaced (version + 1) when they differ. A restriction is
   * never lifted by a pull (it is a local decision; a server that drops security labels must not open
   * the record), only added when the server labels it restricted; so break-glass applies as for any
   * restricted record. An MRN another record holds is refused (two records never share one).
   */
  adoptPulled(id: string, fields: Pick<Patient, 'mrn' | 'givenName' | 'familyName' | 'birthDate' | 'sex'>, labels: { restricted: boolean; synthetic: boolean }): 'created' | 'updated' | 'unchanged' {
    const holder = this.idByMrn(fields.mrn);
    if (holder && holder !== id) throw new NwError('conflict', `MRN ${fields.mrn} belongs to another record on this workstation.`);
    const current = this.get(id);
    const at = this.now().toISOString();
    if (!current) {
      this.db
        .prepare(
          `INSERT INTO patients (id, mrn, given_name, family_name, birth_date, sex, restricted, synthetic, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(id, fields.mrn, fields.givenName, fields.familyName, fields.birthDate, fields.sex, labels.restricted ? 1 : 0, labels.synthetic ? 1 : 0, at, at);
      return 'created';
    }
    const restricted = current.restricted || labels.restricted;
    const same =
      current.mrn === fields.mrn && current.givenName === fields.givenName && current.familyName === fields.familyName && current.birthDate === fields.birthDate && current.sex === fields.sex && current.restricted === restricted;
    if (same) return 'unchanged';
    this.db
      .prepare('UPDATE patients SET mrn = ?, given_name = ?, family_name = ?, birth_date = ?, sex = ?, restricted = ?, version = version + 1, updated_at = ? WHERE id = ?')
      .run(fields.mrn, fields.givenName, fields.familyName, fields.birthDate, fields.sex, restricted ? 1 : 0, at, id);
    return 'updated';
  }

  /**
   * A local MRN no record has yet. 32 random bits collide by chance in a large store (at 58,000 records
   * a crash benchmark hit one), so a taken one is drawn again rather than refused to the user.
   */
  private newMrn(prefix: string): string {
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const mrn = `${prefix}-${randomBytes(4).toString('hex').toUpperCase()}`;
      if (!this.db.prepare('SELECT 1 FROM patients WHERE mrn = ?').get(mrn)) return mrn;
    }
    throw new NwError('conflict', 'Could not find a free MRN; enter one.');
  }
}
