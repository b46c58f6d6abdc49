/**
 * Versioned schema migrations. Each runs in its own transaction together with its row in
 * schema_migrations, so a store is always at exactly one known version. Never edit a shipped
 * migration: add the next one.
 */
import type { Db } from './database.js';
import { NwError } from '../../shared/errors.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'users, patients, outbox, audit ledger',
    sql: `
      CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin','radiologist','physician','nurse','receptionist')),
        password_hash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        synthetic INTEGER NOT NULL DEFAULT 0,
        failed_sign_ins INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        must_change_password INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      CREATE TABLE patients (
        id TEXT PRIMARY KEY,
        mrn TEXT NOT NULL UNIQUE,
        given_name TEXT NOT NULL,
        family_name TEXT NOT NULL,
        birth_date TEXT NOT NULL,
        sex TEXT NOT NULL CHECK (sex IN ('female','male','other','unknown')),
        restricted INTEGER NOT NULL DEFAULT 0,
        synthetic INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX patients_family_name ON patients(family_name COLLATE NOCASE);

      -- Changes waiting for the FHIR servers, written in the same transaction as the change itself.
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        operation TEXT NOT NULL CHECK (operation IN ('create','update','delete')),
        resource_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
      );

      -- Append-only, hash-chained. seq orders the chain; hash = SHA-256 over the entry's content and prev_hash.
      CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        recorded_at TEXT NOT NULL,
        actor_user_id TEXT,
        actor_username TEXT,
        actor_role TEXT,
        session_ref TEXT,
        connection TEXT,
        action TEXT NOT NULL,
        channel TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('success','denied','error')),
        outcome_detail TEXT,
        entity_type TEXT,
        entity_id TEXT,
        patient_id TEXT,
        break_glass INTEGER NOT NULL DEFAULT 0,
        detail_json TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE INDEX audit_log_patient ON audit_log(patient_id);
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

      -- The chain's head, moved in the same transaction as each append: shows entries cut off the end.
      CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'imaging studies and their volumes',
    sql: `
      CREATE TABLE imaging_studies (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        patient_id TEXT REFERENCES patients(id),
        description TEXT NOT NULL,
        source_kind TEXT NOT NULL CHECK (source_kind IN ('dicom','nifti')),
        source_path TEXT NOT NULL,
        manufacturer TEXT,
        dims_json TEXT NOT NULL,
        pixdim_json TEXT NOT NULL,
        affine_json TEXT NOT NULL,
        bvals_json TEXT NOT NULL,
        bvecs_json TEXT NOT NULL,
        masked INTEGER NOT NULL,
        fit_seconds REAL NOT NULL,
        summary_json TEXT NOT NULL
      );
      -- Voxels live in the encrypted store like every other patient datum: one row per 3-D volume or map.
      CREATE TABLE imaging_volumes (
        study_id TEXT NOT NULL REFERENCES imaging_studies(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        components INTEGER NOT NULL,
        min REAL NOT NULL,
        max REAL NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (study_id, key)
      );
    `,
  },
  {
    version: 3,
    name: 'ward vitals: raw readings, per-minute aggregates',
    sql: `
      -- Accepted bedside readings (raw, kept N days). (device_id, seq) identifies a reading: the UNIQUE
      -- constraint makes a duplicate impossible to store twice, whatever the race. The CHECKs repeat the
      -- physically possible ranges of the v1 payload as a last guard: a bad value never reaches disk.
      CREATE TABLE vitals_readings (
        id INTEGER PRIMARY KEY,
        ward TEXT NOT NULL,
        bed TEXT NOT NULL,
        device_id TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (seq >= 0),
        patient_ref TEXT,
        ts TEXT NOT NULL,
        received_at TEXT NOT NULL,
        hr REAL CHECK (hr IS NULL OR hr BETWEEN 0 AND 350),
        spo2 REAL CHECK (spo2 IS NULL OR spo2 BETWEEN 0 AND 100),
        rr REAL CHECK (rr IS NULL OR rr BETWEEN 0 AND 120),
        temp_c REAL CHECK (temp_c IS NULL OR temp_c BETWEEN 20 AND 45),
        sbp REAL CHECK (sbp IS NULL OR sbp BETWEEN 0 AND 350),
        dbp REAL CHECK (dbp IS NULL OR dbp BETWEEN 0 AND 250),
        acvpu TEXT CHECK (acvpu IS NULL OR acvpu IN ('A','C','V','P','U')),
        o2 INTEGER CHECK (o2 IS NULL OR o2 IN (0,1)),
        fault TEXT,
        UNIQUE (device_id, seq)
      );
      CREATE INDEX vitals_readings_bed_ts ON vitals_readings(ward, bed, ts);
      CREATE INDEX vitals_readings_patient_ts ON vitals_readings(patient_ref, ts);
      CREATE INDEX vitals_readings_received ON vitals_readings(received_at);

      -- Per bed, per patient, per minute (UTC, 'YYYY-MM-DDTHH:MM'), kept 90 days. patient_ref '' = none.
      CREATE TABLE vitals_minutes (
        ward TEXT NOT NULL,
        bed TEXT NOT NULL,
        patient_ref TEXT NOT NULL,
        minute TEXT NOT NULL,
        n INTEGER NOT NULL,
        hr_min REAL, hr_max REAL, hr_avg REAL,
        spo2_min REAL, spo2_max REAL, spo2_avg REAL,
        rr_min REAL, rr_max REAL, rr_avg REAL,
        temp_c_min REAL, temp_c_max REAL, temp_c_avg REAL,
        sbp_min REAL, sbp_max REAL, sbp_avg REAL,
        dbp_min REAL, dbp_max REAL, dbp_avg REAL,
        acvpu_worst TEXT,
        o2_any INTEGER,
        faults INTEGER NOT NULL,
        PRIMARY KEY (ward, bed, minute, patient_ref)
      ) WITHOUT ROWID;
      CREATE INDEX vitals_minutes_minute ON vitals_minutes(minute);

      -- Minutes touched by readings since the last downsampling run (late readings included).
      CREATE TABLE vitals_minutes_pending (
        ward TEXT NOT NULL,
        bed TEXT NOT NULL,
        patient_ref TEXT NOT NULL,
        minute TEXT NOT NULL,
        PRIMARY KEY (ward, bed, minute, patient_ref)
      ) WITHOUT ROWID;

      -- Each stored reading looks up its minute's pending outbox bundle: keep that a seek, not a scan.
      CREATE INDEX IF NOT EXISTS outbox_resource ON outbox(resource_type, resource_id);
    `,
  },
  {
    version: 4,
    name: 'vitals bundles written per minute',
    sql: `
      -- Patient minutes whose outbox bundle was queued by their first reading and is to be rewritten,
      -- once, when the minute has ended (vitals-repo.ts queueMinuteBundles).
      CREATE TABLE vitals_bundles_pending (
        patient_ref TEXT NOT NULL,
        minute TEXT NOT NULL,
        PRIMARY KEY (minute, patient_ref)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 5,
    name: 'NEWS2 SpO2 scale per patient',
    sql: `
      -- Patients a clinician put on NEWS2 SpO2 scale 2 (RCP 2017: hypercapnic respiratory failure), with
      -- who, why and when. Scale 1 is the default and has no row. Keyed by the monitor's patient
      -- reference, so the setting follows the patient from bed to bed (ward-service.ts).
      CREATE TABLE vitals_spo2_scale (
        patient_ref TEXT PRIMARY KEY,
        scale INTEGER NOT NULL CHECK (scale IN (1, 2)),
        set_by TEXT NOT NULL,
        reason TEXT NOT NULL,
        set_at TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 6,
    name: 'bedside monitor credentials for the embedded MQTT broker',
    sql: `
      -- One row per bedside monitor allowed on the embedded broker (vitals/monitor-credentials.ts): it
      -- may publish to its one bed topic and nothing else. The password is random (192 bits) and shown
      -- once; only its SHA-256 is kept. A revoked row stays, for the record, and never authenticates again.
      CREATE TABLE vitals_monitor_credentials (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        ward TEXT NOT NULL,
        bed TEXT NOT NULL,
        topic TEXT NOT NULL,
        label TEXT,
        secret_sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at TEXT,
        revoked_by TEXT,
        last_connected_at TEXT
      );
      CREATE INDEX vitals_monitor_credentials_bed ON vitals_monitor_credentials(ward, bed);
    `,
  },
  {
    version: 7,
    name: 'alarm log',
    sql: `
      -- Every alarm event of the ward's alarm engine (raised, updated, escalated, acknowledged, paused,
      -- cleared), each written in the transaction of its audit entry (vitals/alarm-log.ts). Kept as long
      -- as the longest-kept vitals (the minute aggregates), pruned by the ward's retention job.
      CREATE TABLE alarm_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alarm_id TEXT NOT NULL,
        -- '<ward>/<bed>'; NULL for a ward-wide alarm (monitoring lost).
        bed_key TEXT,
        -- The patient in the bed at the time, as the monitor names it ('Patient/<id>' or 'mrn:<MRN>').
        patient_ref TEXT,
        kind TEXT NOT NULL CHECK (kind IN ('physiological', 'technical')),
        condition TEXT NOT NULL,
        -- The alarm's priority right after the event.
        priority TEXT NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
        event TEXT NOT NULL CHECK (event IN ('raised', 'updated', 'escalated', 'acknowledged', 'paused', 'cleared')),
        -- updated: priority-raised | latched | recurred | pause-expired; cleared: resolved | acknowledged |
        -- bed-removed; escalated: whom it went to.
        detail TEXT,
        escalation_level INTEGER NOT NULL DEFAULT 0,
        at TEXT NOT NULL,
        -- Who acknowledged or paused, and why; until when a pause lasts.
        silenced_by TEXT,
        reason TEXT,
        paused_until TEXT,
        message TEXT NOT NULL,
        -- The bed's NEWS2 aggregate at that moment, when known.
        news2 INTEGER
      );
      CREATE INDEX alarm_events_bed_at ON alarm_events(bed_key, at);
      CREATE INDEX alarm_events_patient_at ON alarm_events(patient_ref, at);
      CREATE INDEX alarm_events_at ON alarm_events(at);
    `,
  },
  {
    version: 8,
    name: 'admissions (ADT): patients in beds; readings keep a monitor’s conflicting patient reference',
    sql: `
      -- One row per stay of a patient in one bed (adt/admissions-repo.ts). A transfer ends the row
      -- (end_kind 'transfer') and starts one for the new bed in the same FHIR Encounter; a discharge ends
      -- it (end_kind 'discharge'). Times are UTC ISO 8601 with milliseconds; a stay covers
      -- [admitted_at, discharged_at). A bedside reading belongs to the patient whose stay in its bed
      -- covers the reading's time.
      CREATE TABLE admissions (
        id TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patients(id),
        ward TEXT NOT NULL,
        bed TEXT NOT NULL,
        admitted_at TEXT NOT NULL,
        admitted_by TEXT NOT NULL,
        admitted_by_user_id TEXT,
        -- Why the patient came to this bed (admission or transfer note); optional.
        reason TEXT,
        discharged_at TEXT,
        discharged_by TEXT,
        discharged_by_user_id TEXT,
        end_kind TEXT CHECK (end_kind IS NULL OR end_kind IN ('transfer', 'discharge')),
        -- Why the stay ended (transfer or discharge note); optional.
        end_reason TEXT,
        -- The FHIR Encounter this stay is part of (one per hospital stay, across transfers) and its
        -- version after this row's last change.
        encounter_id TEXT NOT NULL,
        encounter_version INTEGER NOT NULL CHECK (encounter_version >= 1),
        CHECK (discharged_at IS NULL OR discharged_at >= admitted_at),
        CHECK ((discharged_at IS NULL) = (discharged_by IS NULL) AND (discharged_at IS NULL) = (end_kind IS NULL))
      );
      -- At most one open stay per bed and per patient, whatever the race.
      CREATE UNIQUE INDEX admissions_open_bed ON admissions(ward, bed) WHERE discharged_at IS NULL;
      CREATE UNIQUE INDEX admissions_open_patient ON admissions(patient_id) WHERE discharged_at IS NULL;
      CREATE INDEX admissions_bed_time ON admissions(ward, bed, admitted_at);
      CREATE INDEX admissions_patient_time ON admissions(patient_id, admitted_at);
      CREATE INDEX admissions_encounter ON admissions(encounter_id);
      CREATE INDEX admissions_discharged ON admissions(discharged_at);

      -- A reading's patient is the admitted one; where the monitor named someone else, what it sent is
      -- kept, never silently relinked: 'monitor-mismatch' (the bed's admission names another patient)
      -- or 'admitted-elsewhere' (no admission here, and the patient the monitor names is admitted to
      -- another bed).
      ALTER TABLE vitals_readings ADD COLUMN monitor_patient_ref TEXT;
      ALTER TABLE vitals_readings ADD COLUMN patient_conflict TEXT CHECK (patient_conflict IS NULL OR patient_conflict IN ('monitor-mismatch', 'admitted-elsewhere'));
    `,
  },
  {
    version: 9,
    name: 'imaging studies: DICOM patient identity, how the patient was decided, diffusion contrast',
    sql: `
      -- Who the DICOM header says the study is of (JSON: id, name, familyName, givenName, birthDate, sex),
      -- NULL for NIfTI; how the study came to its patient (JSON: decision matched | confirmed | override |
      -- created | unlinked, the fields that differ, the override reason, by, at; imaging/patient-match.ts);
      -- and whether the series carries diffusion contrast at all (JSON, imaging/contrast.ts). NULL in
      -- studies imported before these were recorded.
      ALTER TABLE imaging_studies ADD COLUMN dicom_patient_json TEXT;
      ALTER TABLE imaging_studies ADD COLUMN patient_link_json TEXT;
      ALTER TABLE imaging_studies ADD COLUMN contrast_json TEXT;
      CREATE INDEX imaging_studies_patient ON imaging_studies(patient_id, created_at);
    `,
  },
  {
    version: 10,
    name: 'imaging studies written in chunks: a study is visible once complete',
    sql: `
      -- An import writes its volumes in several short transactions (so the main process's loop, where
      -- the ward's alarms run, is never held for the whole write), then marks the study complete in the
      -- transaction that links its patient and audits it. 0 = still being written, or left by an import
      -- that was interrupted: invisible everywhere, removed by the next import.
      ALTER TABLE imaging_studies ADD COLUMN complete INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1));
    `,
  },
  {
    version: 11,
    name: 'FHIR sync: per-server cursors, confirmed versions, conflicts, dead letters, retired outbox rows',
    sql: `
      -- fhir_valid: 1 = passed R4 validation (at enqueue, fhir/validation.ts, or when the engine first
      -- read it), 0 = failed (never sent; see its dead letters), NULL = not yet checked.
      ALTER TABLE outbox ADD COLUMN fhir_valid INTEGER CHECK (fhir_valid IS NULL OR fhir_valid IN (0, 1));

      -- Retirement marks: every outbox row with id <= upto_id was finished by every configured server
      -- (sent, parked as a conflict or a dead letter) at retired_at; such rows are deleted after the
      -- retention period (fhir/sync/sync-state.ts). A mark, not a column: retiring ten thousand rows
      -- writes one small row instead of rewriting every row (and its JSON) again.
      CREATE TABLE outbox_retired (
        upto_id INTEGER PRIMARY KEY,
        retired_at TEXT NOT NULL
      );

      -- One row per configured server (by its configured name). Every outbox row with id <= cursor is
      -- finished for this server; rows finished beyond the cursor (while an earlier one waits for a retry)
      -- are in fhir_sync_done. inflight_json: the outbox ids of the Bundle on the wire, written before it
      -- is sent and cleared in the transaction that records its outcome: still set after a crash or an
      -- unanswered request, it makes the next attempt read the server before writing (nothing twice).
      CREATE TABLE fhir_sync_servers (
        name TEXT PRIMARY KEY,
        cursor INTEGER NOT NULL DEFAULT 0,
        inflight_json TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_attempt_at TEXT,
        last_success_at TEXT,
        last_error TEXT,
        last_error_at TEXT
      ) WITHOUT ROWID;

      CREATE TABLE fhir_sync_done (
        server TEXT NOT NULL,
        outbox_id INTEGER NOT NULL,
        PRIMARY KEY (server, outbox_id)
      ) WITHOUT ROWID;

      -- The resources of a Bundle row already decided for a server (sent, parked in a conflict, dead
      -- letter) while another resource of the same row waits for a retry: not decided again.
      CREATE TABLE fhir_sync_done_changes (
        server TEXT NOT NULL,
        outbox_id INTEGER NOT NULL,
        resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        PRIMARY KEY (server, outbox_id, resource_type, resource_id)
      ) WITHOUT ROWID;

      -- Per server and resource: the version the server last confirmed for what we sent (If-Match of the
      -- next update) and the SHA-256 of that content (an unchanged resource is not sent again).
      CREATE TABLE fhir_sync_versions (
        server TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        version_id TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        confirmed_at TEXT NOT NULL,
        PRIMARY KEY (server, resource_type, resource_id)
      ) WITHOUT ROWID;
      CREATE INDEX fhir_sync_versions_confirmed ON fhir_sync_versions(resource_type, confirmed_at);

      -- A change the server refused because its copy moved on (412, or 409 from older servers): never
      -- overwritten silently. base = the version we last confirmed (JSON as the server kept it, when it
      -- could be read), local = ours (NULL: a deletion), remote = the server's now (NULL: deleted there).
      -- Later local changes of the same resource fold into the open conflict instead of being sent.
      CREATE TABLE fhir_sync_conflicts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        server TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        outbox_id INTEGER NOT NULL,
        local_operation TEXT NOT NULL CHECK (local_operation IN ('put', 'delete')),
        http_status INTEGER NOT NULL,
        base_version_id TEXT,
        base_json TEXT,
        local_json TEXT,
        remote_version_id TEXT,
        remote_json TEXT,
        detected_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'kept-mine', 'took-theirs')),
        resolved_at TEXT,
        resolved_by TEXT,
        -- What the last keep-mine sent, written before sending: if its answer was lost, the server's copy
        -- then is ours, recognised as such (no second conflict about our own write).
        attempted_json TEXT
      );
      CREATE UNIQUE INDEX fhir_sync_conflicts_open ON fhir_sync_conflicts(server, resource_type, resource_id) WHERE status = 'open';

      -- A change a server refused for good (4xx with its OperationOutcome), or that failed local
      -- validation and so never left: kept with the reason until a person discards or requeues it.
      CREATE TABLE fhir_sync_dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        server TEXT NOT NULL,
        outbox_id INTEGER NOT NULL,
        resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        local_operation TEXT NOT NULL CHECK (local_operation IN ('put', 'delete')),
        resource_json TEXT,
        http_status INTEGER,
        message TEXT NOT NULL,
        outcome_json TEXT,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'discarded', 'requeued')),
        closed_at TEXT,
        closed_by TEXT
      );
      CREATE INDEX fhir_sync_dead_letters_server ON fhir_sync_dead_letters(server, status);
    `,
  },
  {
    version: 12,
    name: 'FHIR pull: per-server cursors by _lastUpdated; the local copies of pulled resources',
    sql: `
      -- Incremental pull (fhir/sync/pull.ts), per server and resource type: the newest meta.lastUpdated
      -- (the SERVER's clock, never ours) of the resources applied so far. The next pull asks for
      -- _lastUpdated >= last_updated minus the overlap window; what it already holds is recognised by
      -- its version (fhir_sync_versions) and skipped.
      CREATE TABLE fhir_pull_cursors (
        server TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        last_updated TEXT,
        last_success_at TEXT,
        last_error TEXT,
        last_error_at TEXT,
        PRIMARY KEY (server, resource_type)
      ) WITHOUT ROWID;

      -- The workstation's copy of every resource of a pulled type (fhir/sync/pull-store.ts): pulled
      -- (origin_server names the server it last came from, with its version) or written here (origin
      -- 'local', queued in the outbox in the same transaction). resource_json is the resource without
      -- server-managed meta (versionId, lastUpdated); content_sha256 its canonical hash, the same as
      -- fhir_sync_versions.content_sha256 for the server that confirmed it. Patients are also merged into
      -- the patients table (their copy here is kept only to recognise content already held; it is read through
      -- the patients domain, where restriction and break-glass apply). deleted_at: the resource was
      -- deleted (marked, never dropped: appointments and slots are clinical history).
      CREATE TABLE fhir_resources (
        resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        resource_json TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('local', 'pulled')),
        origin_server TEXT,
        remote_version_id TEXT,
        remote_last_updated TEXT,
        updated_at TEXT NOT NULL,
        deleted_at TEXT,
        PRIMARY KEY (resource_type, resource_id)
      ) WITHOUT ROWID;
      CREATE INDEX fhir_resources_type_updated ON fhir_resources(resource_type, updated_at);
    `,
  },
  {
    version: 13,
    name: 'AI reads of studies and the radiologist decisions on them; in-app notifications',
    sql: `
      -- One row per AI second read of a study (analysis/ai-reads-repo.ts). The model's finding is kept
      -- as it was (finding, probability, result_json); the radiologist's decision is added beside it,
      -- never over it. status follows the FHIR DiagnosticReport the read is sent as: preliminary until
      -- a radiologist confirms (final), amends (amended) or rejects it (entered-in-error). The heat map
      -- and the cluster map are imaging_volumes rows of the study, keys ai:<read id>:heatmap / :clusters.
      CREATE TABLE ai_reads (
        id TEXT PRIMARY KEY,
        study_id TEXT NOT NULL REFERENCES imaging_studies(id) ON DELETE CASCADE,
        patient_id TEXT NOT NULL REFERENCES patients(id),
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_by_user_id TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_version TEXT NOT NULL,
        model_hash TEXT NOT NULL,
        backend TEXT NOT NULL,
        finding TEXT NOT NULL CHECK (finding IN ('suspected', 'not-found')),
        probability REAL NOT NULL,
        threshold REAL NOT NULL,
        conclusion TEXT NOT NULL,
        -- Regions, slice probabilities, per-cluster FA/MD, stage times, backends tried.
        result_json TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('preliminary', 'final', 'amended', 'entered-in-error')),
        decision TEXT CHECK (decision IS NULL OR decision IN ('confirmed', 'amended', 'rejected')),
        decided_at TEXT,
        decided_by TEXT,
        decided_by_user_id TEXT,
        decision_comment TEXT,
        -- What the radiologist concluded when amending; the finding they settled on.
        amended_conclusion TEXT,
        amended_finding TEXT CHECK (amended_finding IS NULL OR amended_finding IN ('suspected', 'not-found')),
        -- The report's FHIR resources as last queued (DiagnosticReport, Device, Observations, Media).
        resources_json TEXT NOT NULL,
        -- The FHIR DiagnosticReport's version: 1 when queued, +1 per decision (one decision per read).
        report_version INTEGER NOT NULL DEFAULT 1,
        CHECK ((decision IS NULL) = (decided_at IS NULL) AND (decision IS NULL) = (status = 'preliminary')),
        CHECK ((decision = 'amended') = (amended_conclusion IS NOT NULL))
      );
      CREATE INDEX ai_reads_study ON ai_reads(study_id, created_at);
      CREATE INDEX ai_reads_patient ON ai_reads(patient_id, created_at);

      -- Messages to a role's in-app inbox (e.g. a confirmed suspected lesion for the physicians), with
      -- the patient they are about and what they point to. read_at: first opened by someone of the role.
      CREATE TABLE notifications (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        recipient_role TEXT NOT NULL,
        patient_id TEXT REFERENCES patients(id),
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        subject_type TEXT,
        subject_id TEXT,
        read_at TEXT,
        read_by_user_id TEXT
      );
      CREATE INDEX notifications_role ON notifications(recipient_role, created_at);
    `,
  },
  {
    version: 14,
    name: 'Scheduling: bookable resources, their schedules, availability templates and blocks; appointments, holds and their history',
    sql: `
      -- Who and what can be booked (crm/schedule-repo.ts): a practitioner (FHIR Practitioner +
      -- PractitionerRole), a room (Location) or a device such as the MRI scanner (Device). Each has one
      -- schedule: its IANA time zone (clinic hours are wall-clock times there, so they stay put across a
      -- daylight-saving change), the slot grid and the buffer kept free around each appointment.
      CREATE TABLE crm_resources (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('practitioner', 'room', 'device')),
        name TEXT NOT NULL,
        role TEXT,
        active INTEGER NOT NULL DEFAULT 1,
        time_zone TEXT NOT NULL,
        slot_minutes INTEGER NOT NULL CHECK (slot_minutes BETWEEN 5 AND 240),
        buffer_minutes INTEGER NOT NULL DEFAULT 0 CHECK (buffer_minutes BETWEEN 0 AND 120),
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        UNIQUE (kind, name)
      );
      -- Recurring availability: an RFC 5545 RRULE over local dates from valid_from (through valid_until),
      -- each occurrence open from start_time to end_time local. Templates of one resource never overlap
      -- (checked when one is added).
      CREATE TABLE crm_availability (
        id TEXT PRIMARY KEY,
        resource_id TEXT NOT NULL REFERENCES crm_resources(id),
        rrule TEXT NOT NULL,
        start_time TEXT NOT NULL CHECK (start_time GLOB '[0-2][0-9]:[0-5][0-9]'),
        end_time TEXT NOT NULL CHECK (end_time GLOB '[0-2][0-9]:[0-5][0-9]' AND end_time > start_time),
        valid_from TEXT NOT NULL,
        valid_until TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL
      );
      CREATE INDEX crm_availability_resource ON crm_availability(resource_id);
      -- Time taken out of a resource's availability: a block (a meeting, maintenance) or a holiday. UTC.
      CREATE TABLE crm_blocks (
        id TEXT PRIMARY KEY,
        resource_id TEXT NOT NULL REFERENCES crm_resources(id),
        kind TEXT NOT NULL CHECK (kind IN ('block', 'holiday')),
        start_at TEXT NOT NULL,
        end_at TEXT NOT NULL CHECK (end_at > start_at),
        reason TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL
      );
      CREATE INDEX crm_blocks_resource ON crm_blocks(resource_id, start_at);
      -- Appointments (FHIR Appointment). start_at/end_at are UTC ISO strings (null on the waitlist);
      -- rescheduled_from links the appointment that was moved (kept, cancelled, with its history).
      CREATE TABLE crm_appointments (
        id TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patients(id),
        status TEXT NOT NULL CHECK (status IN ('proposed', 'pending', 'booked', 'arrived', 'checked-in', 'fulfilled', 'cancelled', 'noshow', 'entered-in-error', 'waitlist')),
        start_at TEXT,
        end_at TEXT,
        service TEXT NOT NULL,
        note TEXT,
        overbooked_reason TEXT,
        rescheduled_from TEXT REFERENCES crm_appointments(id),
        version INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        CHECK ((start_at IS NULL) = (end_at IS NULL) AND (start_at IS NULL OR end_at > start_at))
      );
      CREATE INDEX crm_appointments_patient ON crm_appointments(patient_id, start_at);
      CREATE INDEX crm_appointments_start ON crm_appointments(start_at);
      -- Which resources an appointment takes, with its time (ms since the epoch: compared and read as
      -- numbers) and whether it occupies it now (booked, arrived, ...: kept with the appointment's
      -- status), so a resource's busy time in a range is one index range however long its history.
      CREATE TABLE crm_appointment_resources (
        appointment_id TEXT NOT NULL REFERENCES crm_appointments(id),
        resource_id TEXT NOT NULL REFERENCES crm_resources(id),
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        occupying INTEGER NOT NULL CHECK (occupying IN (0, 1)),
        PRIMARY KEY (appointment_id, resource_id)
      ) WITHOUT ROWID;
      CREATE INDEX crm_appointment_resources_busy ON crm_appointment_resources(resource_id, start_ms, end_ms) WHERE occupying = 1;
      -- Every state an appointment went through: booked, moved, arrived, cancelled... (who, when, why).
      CREATE TABLE crm_appointment_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        appointment_id TEXT NOT NULL REFERENCES crm_appointments(id),
        at TEXT NOT NULL,
        by TEXT NOT NULL,
        status TEXT NOT NULL,
        start_at TEXT,
        end_at TEXT,
        note TEXT
      );
      CREATE INDEX crm_appointment_history_appointment ON crm_appointment_history(appointment_id, seq);
      -- A short hold on a time while the receptionist confirms: it occupies the resources (and the
      -- patient) for everyone else until it expires or is booked.
      CREATE TABLE crm_holds (
        id TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patients(id),
        start_at TEXT NOT NULL,
        end_at TEXT NOT NULL CHECK (end_at > start_at),
        resource_ids_json TEXT NOT NULL,
        held_by_user_id TEXT NOT NULL,
        expires_at TEXT NOT NULL
      );
      CREATE INDEX crm_holds_expires ON crm_holds(expires_at);
      -- One row every booking writes first: it takes the store's write lock before the checks read,
      -- so two bookings from separate connections are serialised (see crm/booking.ts).
      CREATE TABLE crm_booking_guard (id INTEGER PRIMARY KEY CHECK (id = 1), bookings INTEGER NOT NULL);
      INSERT INTO crm_booking_guard (id, bookings) VALUES (1, 0);
    `,
  },
  {
    version: 15,
    name: "Patients' contacts with their consent per channel; appointment reminders and their durable outbox",
    sql: `
      -- How a patient may be contacted (crm/reminders.ts): one address per channel, with the patient's
      -- consent to be contacted on it (recorded by whom, when). No consent, no reminder on that channel.
      CREATE TABLE crm_contacts (
        patient_id TEXT NOT NULL REFERENCES patients(id),
        channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'letter')),
        address TEXT NOT NULL,
        consent INTEGER NOT NULL CHECK (consent IN (0, 1)),
        recorded_at TEXT NOT NULL,
        recorded_by TEXT NOT NULL,
        PRIMARY KEY (patient_id, channel)
      ) WITHOUT ROWID;
      -- One row per planned reminder (FHIR CommunicationRequest) and its outcome (Communication): the
      -- reminders' own outbox. 'sending' is claimed in a transaction before the send; a row found
      -- 'sending' after a restart is not sent again (never twice) but marked failed, in doubt.
      CREATE TABLE crm_reminders (
        id TEXT PRIMARY KEY,
        appointment_id TEXT NOT NULL REFERENCES crm_appointments(id),
        patient_id TEXT NOT NULL REFERENCES patients(id),
        channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'file')),
        address TEXT NOT NULL,
        offset_minutes INTEGER NOT NULL,
        due_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('planned', 'sending', 'sent', 'failed', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        sent_at TEXT,
        message_id TEXT,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX crm_reminders_next ON crm_reminders(status, next_attempt_at);
      CREATE INDEX crm_reminders_appointment ON crm_reminders(appointment_id);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export function applyMigrations(db: Db, now: () => string): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const row = db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null };
  const current = row.v ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new NwError('store-corrupted', `The store was written by a newer NeuroWard (schema ${current}; this version knows up to ${SCHEMA_VERSION}). Upgrade the application.`);
  }
  let applied = 0;
  for (const migration of MIGRATIONS.filter((m) => m.version > current)) {
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.name, now());
      db.pragma(`user_version = ${migration.version}`);
    })();
    applied += 1;
  }
  return applied;
}
