/**
 * Issue 8 item 6: imported studies belong to a patient. Through the real dispatcher, store and readers:
 * the scan reports the DICOM patient identity of each series and its match against the local records
 * (exact, conflict, candidates, none, no identity) on synthetic DICOM written by the fixture writer
 * with chosen patient tags and on the real scanner data; the import carries an explicit decision, checked
 * on the server (a mismatch needs an override reason, audited); registering a patient from the DICOM data
 * happens in the study's transaction (a failure leaves neither); restricted records are shown by MRN
 * only; NIfTI imports need a decision; a study stored without a patient is flagged and can be linked later.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImagingJob, Patient, SeriesSummaryView } from '../../src/shared/ipc.js';
import { defaultImagingEngines } from '../../src/main/imaging/engines.js';
import { repositories } from '../../src/main/app/handlers.js';
import { openEncryptedDatabase } from '../../src/main/store/database.js';
import { derivePassphraseKey, readKeyInfo } from '../../src/main/store/keys.js';
import { dicomDate, dicomPatient, dicomPersonName, normaliseName } from '../../src/main/imaging/dicom-patient.js';
import { setUpWorkstation, STORE_PASSPHRASE, type TestConnection, type Workstation } from '../support/harness.js';
import { finishedJob } from '../support/imaging-jobs.js';
import { sharedData, SHARED_DATA } from '../support/shared-data.js';
import { writeFixture } from './dicom/helpers.js';

let root: string;
let ws: Workstation;
let radiologist: TestConnection;
let physician: TestConnection;
const local: Record<string, Patient> = {};

/** One synthetic classic series per folder, with these patient tags ('' leaves a tag out). */
const SERIES: Record<string, string[]> = {
  exact: ['--patient-id', 'MRN-EXACT1', '--patient-name', 'Doe^Jane', '--birth-date', '19800102', '--sex', 'F'],
  conflict: ['--patient-id', 'MRN-CONF1', '--patient-name', 'Roe^Richard', '--birth-date', '19700101', '--sex', 'M'],
  candidates: ['--patient-id', 'EXT-999', '--patient-name', "O'Brien^Mary", '--birth-date', '19650303', '--sex', 'F'],
  none: ['--patient-id', 'NEW-1', '--patient-name', 'Newman^Nora', '--birth-date', '19900909', '--sex', 'F'],
  atomic: ['--patient-id', 'ATOM-1', '--patient-name', 'Atomic^Anna', '--birth-date', '19850505', '--sex', 'F'],
  vip: ['--patient-id', 'MRN-VIP1', '--patient-name', 'Vip^Victor', '--birth-date', '19600606', '--sex', 'M'],
  utf8: ['--patient-id', 'DE-42', '--patient-name', 'Müller^Jörg', '--birth-date', '19750505', '--sex', 'M', '--charset', 'ISO_IR 192'],
  anonymous: ['--patient-id', '', '--patient-name', ''],
};

async function scanOne(connection: TestConnection, folder: string): Promise<SeriesSummaryView> {
  const { series } = await connection.ok('imaging.scan', { path: path.join(root, folder) });
  expect(series).toHaveLength(1);
  return series[0]!;
}

async function importDone(connection: TestConnection, request: Parameters<TestConnection['ok']>[1] & object): Promise<ImagingJob> {
  const job = await connection.ok('imaging.import', request as never);
  const done = await finishedJob(connection, job.id);
  expect(done.error, done.error ?? '').toBeNull();
  return done;
}

async function studyOf(connection: TestConnection, studyId: string) {
  const { studies } = await connection.ok('imaging.studies', {});
  return studies.find((s) => s.id === studyId)!;
}

async function storeKey(dataDir: string): Promise<Buffer> {
  return derivePassphraseKey(STORE_PASSPHRASE, readKeyInfo(`${dataDir}/neuroward.keyinfo.json`)!);
}

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'nw-match-'));
  for (const [folder, args] of Object.entries(SERIES)) writeFixture('write_synthetic.py', path.join(root, folder), 'classic', ...args);
  ws = await setUpWorkstation({ imaging: { importRoots: [root, SHARED_DATA] } });
  ({ connection: radiologist } = await ws.signInAs('radiologist'));
  ({ connection: physician } = await ws.signInAs('physician'));
  const create = async (key: string, input: Parameters<TestConnection['ok']>[1] & object) => {
    local[key] = await physician.ok('patients.create', input as never);
  };
  await create('exact', { givenName: 'Jane', familyName: 'Doe', birthDate: '1980-01-02', sex: 'female', mrn: 'MRN-EXACT1' });
  await create('conflict', { givenName: 'Richard', familyName: 'Roe', birthDate: '1971-05-05', sex: 'male', mrn: 'MRN-CONF1' });
  await create('candidate', { givenName: 'Mary', familyName: 'OBrien', birthDate: '1965-03-03', sex: 'female', mrn: 'MRN-CAND1' });
  await create('restrictedCandidate', { givenName: 'Margaret', familyName: "O'Brien", birthDate: '1965-03-03', sex: 'female', mrn: 'MRN-CAND2', restricted: true });
  await create('vip', { givenName: 'Victor', familyName: 'Vip', birthDate: '1960-06-06', sex: 'male', mrn: 'MRN-VIP1', restricted: true });
  await create('muller', { givenName: 'Jorg', familyName: 'Muller', birthDate: '1975-05-05', sex: 'male', mrn: 'MRN-MUL1' });
}, 120_000);
afterAll(async () => ws?.app.close());

describe('DICOM patient identity', () => {
  it('is read from the header in the record shapes (dates, sex, PN components, UTF-8 names)', () => {
    expect(dicomDate('19800102')).toBe('1980-01-02');
    expect(dicomDate('1980.01.02')).toBe('1980-01-02');
    for (const bad of ['', '19801302', '19800230', 'unknown', null]) expect(dicomDate(bad)).toBeNull();
    expect(dicomPersonName('Doe^Jane^Q^Dr')).toEqual({ familyName: 'Doe', givenName: 'Jane Q' });
    expect(dicomPersonName('Yamada^Tarou=山田^太郎')).toEqual({ familyName: 'Yamada', givenName: 'Tarou' });
    expect(dicomPatient({ patientId: ' ', patientName: '', patientBirthDate: '', patientSex: '' })).toBeNull();
    expect(normaliseName("O'Brien-Smith")).toBe(normaliseName('obrien smith'));
    expect(normaliseName('Müller')).toBe('muller');
  });

  it('the scan reports it per series, for synthetic and real scanner data', async () => {
    const exact = await scanOne(radiologist, 'exact');
    expect(exact.patient).toEqual({ id: 'MRN-EXACT1', name: 'Doe^Jane', familyName: 'Doe', givenName: 'Jane', birthDate: '1980-01-02', sex: 'female' });
    expect((await scanOne(radiologist, 'utf8')).patient).toMatchObject({ familyName: 'Müller', givenName: 'Jörg' });
    expect((await scanOne(radiologist, 'anonymous')).patient).toBeNull();

    const { series: ge } = await radiologist.ok('imaging.scan', { path: sharedData('dwi-ge', 'In') });
    for (const s of ge) expect(s.patient).toEqual({ id: 'dicom', name: 'dicom', familyName: 'dicom', givenName: null, birthDate: null, sex: null });
    const { series: siemens } = await radiologist.ok('imaging.scan', { path: sharedData('dwi-siemens-mosaic', 'In') });
    expect(siemens[0]!.patient).toEqual({ id: 'jflab', name: 'dtiferesh', familyName: 'dtiferesh', givenName: null, birthDate: '1999-01-01', sex: 'male' });
    expect(siemens[0]!.match.kind).toBe('none');
  });
});

describe('matching against local patients at scan time', () => {
  it('exact: the MRN is the Patient ID and nothing disagrees', async () => {
    const { match } = await scanOne(radiologist, 'exact');
    expect(match.kind).toBe('exact');
    expect(match.patient).toMatchObject({ id: local.exact!.id, mrn: 'MRN-EXACT1', name: 'Jane Doe' });
    expect(match.agreement).toEqual({ mrn: 'same', familyName: 'same', givenName: 'same', birthDate: 'same', sex: 'same' });
  });

  it('conflict: the MRN matches but the birth date differs: shown, not a match', async () => {
    const { match } = await scanOne(radiologist, 'conflict');
    expect(match.kind).toBe('conflict');
    expect(match.patient?.id).toBe(local.conflict!.id);
    expect(match.agreement).toMatchObject({ mrn: 'same', birthDate: 'different' });
    expect(match.message).toContain('birth date');
  });

  it('candidates: no MRN match; same normalised family name and birth date (UTF-8 names too)', async () => {
    const { match } = await scanOne(radiologist, 'candidates');
    expect(match.kind).toBe('candidates');
    expect(match.patient).toBeNull();
    const ids = match.candidates.map((c) => c.patient.id);
    expect(ids.sort()).toEqual([local.candidate!.id, local.restrictedCandidate!.id].sort());
    const open = match.candidates.find((c) => c.patient.id === local.candidate!.id)!;
    expect(open.patient.name).toBe('Mary OBrien');
    expect(open.agreement).toMatchObject({ mrn: 'different', familyName: 'same', birthDate: 'same' });
    const utf8 = await scanOne(radiologist, 'utf8');
    expect(utf8.match.kind).toBe('candidates');
    expect(utf8.match.candidates.map((c) => c.patient.mrn)).toEqual(['MRN-MUL1']);
  });

  it('none, and no identity', async () => {
    expect((await scanOne(radiologist, 'none')).match.kind).toBe('none');
    expect((await scanOne(radiologist, 'anonymous')).match.kind).toBe('no-identity');
  });

  it('a restricted record is shown as its MRN only without break-glass, in full with it', async () => {
    const vip = await scanOne(radiologist, 'vip');
    expect(vip.match.kind).toBe('exact');
    expect(vip.match.patient).toEqual({ id: local.vip!.id, mrn: 'MRN-VIP1', restricted: true, synthetic: false, name: null, birthDate: null, sex: null });
    expect(vip.match.agreement).toBeNull();
    expect(vip.match.message).toContain('restricted record (MRN MRN-VIP1)');
    expect(JSON.stringify(vip.match)).not.toContain('Victor');
    const candidates = await scanOne(radiologist, 'candidates');
    const hidden = candidates.match.candidates.find((c) => c.patient.id === local.restrictedCandidate!.id)!;
    expect(hidden).toEqual({ patient: expect.objectContaining({ mrn: 'MRN-CAND2', restricted: true, name: null, birthDate: null, sex: null }), agreement: null });
    expect(JSON.stringify(candidates)).not.toContain('Margaret');

    const { connection: glass } = await ws.signInAs('radiologist');
    await glass.ok('auth.breakGlass', { reason: 'identify the unconscious patient in resus', minutes: 5 });
    expect((await scanOne(glass, 'vip')).match.patient?.name).toBe('Victor Vip');
    const seen = (await scanOne(glass, 'candidates')).match.candidates.find((c) => c.patient.id === local.restrictedCandidate!.id)!;
    expect(seen.patient.name).toBe("Margaret O'Brien");
  });
});

describe('the import carries a decision, checked on the server', () => {
  it('refuses a series that names a patient when no decision is given', async () => {
    const error = await radiologist.fail('imaging.import', { path: path.join(root, 'exact') });
    expect(error.code).toBe('bad-request');
    expect(error.message).toMatch(/name a patient .*Doe.*MRN-EXACT1.*confirm the patient/i);
    expect((await radiologist.fail('imaging.import', { path: path.join(root, 'exact'), patientId: local.exact!.id, unlinked: true })).code).toBe('bad-request');
  });

  it('exact match confirmed: the study is the patient\'s, listed in their record', async () => {
    const done = await importDone(radiologist, { path: path.join(root, 'exact'), patientId: local.exact!.id });
    expect(done.patientId).toBe(local.exact!.id);
    expect(done.message).toContain('Jane Doe (MRN MRN-EXACT1)');
    const study = await studyOf(radiologist, done.studyId!);
    expect(study).toMatchObject({ patientId: local.exact!.id, patient: { mrn: 'MRN-EXACT1', name: 'Jane Doe' }, dicomPatient: { id: 'MRN-EXACT1' } });
    expect(study.patientLink).toMatchObject({ decision: 'matched', differences: [], reason: null });
    const { studies } = await physician.ok('imaging.studies', { patientId: local.exact!.id });
    expect(studies.map((s) => s.id)).toEqual([study.id]);
    expect((await physician.ok('imaging.studies', { patientId: local.muller!.id })).studies).toEqual([]);
  });

  it('a mismatch never links silently: refused without an override reason, audited with it', async () => {
    const refused = await radiologist.fail('imaging.import', { path: path.join(root, 'conflict'), patientId: local.conflict!.id });
    expect(refused.code).toBe('conflict');
    expect(refused.message).toContain('birth date');
    expect(refused.message).toContain('override');
    // A candidate's MRN is not the DICOM Patient ID: confirming it is an override too.
    const candidate = await radiologist.fail('imaging.import', { path: path.join(root, 'candidates'), patientId: local.candidate!.id });
    expect(candidate.code).toBe('conflict');
    expect(candidate.message).toContain('MRN / Patient ID');
    // Short reasons are refused by the schema.
    expect((await radiologist.fail('imaging.import', { path: path.join(root, 'conflict'), patientId: local.conflict!.id, override: 'typo' })).code).toBe('bad-request');

    const reason = 'birth date mistyped at the scanner console, checked with the ward';
    const done = await importDone(radiologist, { path: path.join(root, 'conflict'), patientId: local.conflict!.id, override: reason });
    const study = await studyOf(radiologist, done.studyId!);
    expect(study.patientLink).toMatchObject({ decision: 'override', differences: ['birthDate'], reason });
    const { connection: admin } = await ws.signInAs('admin');
    const entry = (await admin.ok('audit.list', { limit: 100, action: 'imaging.import' })).entries.find((e) => e.entityId === study.id)!;
    expect(entry).toMatchObject({ outcome: 'success', patientId: local.conflict!.id });
    const key = await storeKey(ws.config.dataDir);
    const db = openEncryptedDatabase(`${ws.config.dataDir}/neuroward.db`, key, { create: false });
    try {
      const row = db.prepare('SELECT detail_json FROM audit_log WHERE seq = ?').get(entry.seq) as { detail_json: string };
      expect(JSON.parse(row.detail_json)).toMatchObject({ patientLink: { decision: 'override', differences: ['birthDate'], reason } });
    } finally {
      db.close();
    }
  });

  it('registers a patient from the DICOM data (as confirmed) with the study: record, FHIR Patient, audit', async () => {
    // The same person as in the files, or a reason.
    const edited = await radiologist.fail('imaging.import', { path: path.join(root, 'none'), createPatient: { givenName: 'Nora', familyName: 'Newman', birthDate: '1991-09-09', sex: 'female' } });
    expect(edited).toMatchObject({ code: 'conflict', message: expect.stringContaining('birth date') });
    const done = await importDone(radiologist, { path: path.join(root, 'none'), createPatient: { givenName: 'Nora', familyName: 'NEWMAN', birthDate: '1990-09-09', sex: 'female' } });
    expect(done.patientId).not.toBeNull();
    const patient = await physician.ok('patients.get', { id: done.patientId! });
    expect(patient).toMatchObject({ mrn: 'NEW-1', givenName: 'Nora', familyName: 'NEWMAN', birthDate: '1990-09-09', restricted: false });
    const study = await studyOf(radiologist, done.studyId!);
    expect(study.patientLink?.decision).toBe('created');
    const { connection: admin } = await ws.signInAs('admin');
    const created = (await admin.ok('audit.list', { limit: 50, action: 'patient.create' })).entries.find((e) => e.entityId === patient.id)!;
    expect(created).toMatchObject({ outcome: 'success', actorRole: 'radiologist', patientId: patient.id });
    const key = await storeKey(ws.config.dataDir);
    const db = openEncryptedDatabase(`${ws.config.dataDir}/neuroward.db`, key, { create: false });
    try {
      expect(db.prepare("SELECT count(*) AS n FROM outbox WHERE resource_type = 'Patient' AND resource_id = ?").get(patient.id)).toEqual({ n: 1 });
    } finally {
      db.close();
    }
    // Now the MRN is registered: a second import of that series matches it exactly, and creating again is refused.
    expect((await scanOne(radiologist, 'none')).match).toMatchObject({ kind: 'exact', patient: { id: patient.id } });
    expect((await radiologist.fail('imaging.import', { path: path.join(root, 'none'), createPatient: { givenName: 'Nora', familyName: 'Newman', birthDate: '1990-09-09', sex: 'female' } })).code).toBe('conflict');
  });

  it('a radiologist registers patients only from a study (patients.create stays refused)', async () => {
    const refused = await radiologist.fail('patients.create', { givenName: 'Any', familyName: 'One', birthDate: '1970-01-01', sex: 'unknown' });
    expect(refused.code).toBe('forbidden');
  });

  it('unlinked: the study is flagged, then linked later (audited); a linked study is not relinked', async () => {
    const done = await importDone(radiologist, { path: path.join(root, 'candidates'), unlinked: true });
    expect(done.patientId).toBeNull();
    expect(done.message).toContain('without a patient');
    const study = await studyOf(radiologist, done.studyId!);
    expect(study).toMatchObject({ patientId: null, patient: null, patientLink: { decision: 'unlinked' } });

    expect((await radiologist.fail('imaging.linkPatient', { studyId: study.id, patientId: local.candidate!.id })).code).toBe('conflict');
    const linked = await radiologist.ok('imaging.linkPatient', { studyId: study.id, patientId: local.candidate!.id, override: 'outside hospital ID; same person confirmed by phone' });
    expect(linked).toMatchObject({ patientId: local.candidate!.id, patient: { mrn: 'MRN-CAND1' }, patientLink: { decision: 'override', differences: ['mrn'] } });
    expect((await radiologist.fail('imaging.linkPatient', { studyId: study.id, patientId: local.exact!.id, override: 'moving it to another patient' })).code).toBe('conflict');
    expect((await physician.fail('imaging.linkPatient', { studyId: study.id, patientId: local.exact!.id })).code).toBe('forbidden');
    const { connection: admin } = await ws.signInAs('admin');
    const entries = (await admin.ok('audit.list', { limit: 50, action: 'imaging.link-patient' })).entries.filter((e) => e.entityId === study.id);
    expect(entries.map((e) => e.outcome).sort()).toEqual(['error', 'error', 'success'].sort());
  });

  it('a series that names nobody may be imported without a decision: stored unlinked', async () => {
    const done = await importDone(radiologist, { path: path.join(root, 'anonymous') });
    expect((await studyOf(radiologist, done.studyId!)).patientLink?.decision).toBe('unlinked');
  });

  it('a study stored without a patient whose Patient ID is a restricted MRN stays behind break-glass', async () => {
    const before = await radiologist.ok('imaging.studies', {});
    const done = await importDone(radiologist, { path: path.join(root, 'vip'), unlinked: true });
    const after = await radiologist.ok('imaging.studies', {});
    expect(after.studies.map((s) => s.id)).not.toContain(done.studyId);
    expect(after.restrictedHidden).toBe(before.restrictedHidden + 1);
    expect((await radiologist.fail('imaging.volume', { studyId: done.studyId!, volume: 'fa' })).code).toBe('forbidden');
    expect((await radiologist.fail('imaging.linkPatient', { studyId: done.studyId!, patientId: local.vip!.id })).code).toBe('forbidden');
    const { connection: glass } = await ws.signInAs('radiologist');
    await glass.ok('auth.breakGlass', { reason: 'identify the unconscious patient in resus', minutes: 5 });
    expect((await glass.ok('imaging.studies', {})).studies.map((s) => s.id)).toContain(done.studyId);
    const linked = await glass.ok('imaging.linkPatient', { studyId: done.studyId!, patientId: local.vip!.id });
    expect(linked.patientLink).toMatchObject({ decision: 'matched', differences: [] });
  });

  it('NIfTI names nobody: the import needs a patient or an explicit "no patient"', async () => {
    const nii = sharedData('dwi-siemens-mosaic', 'Ref', '4_DWI_SagAPmosaic.nii');
    const refused = await radiologist.fail('imaging.import', { path: nii });
    expect(refused.code).toBe('bad-request');
    expect(refused.message).toMatch(/NIfTI file names no patient/);
    expect((await radiologist.fail('imaging.import', { path: nii, createPatient: { givenName: 'A', familyName: 'B', birthDate: '1970-01-01', sex: 'unknown' } })).code).toBe('bad-request');
    const done = await importDone(radiologist, { path: nii, patientId: local.muller!.id });
    expect((await studyOf(radiologist, done.studyId!)).patientLink).toMatchObject({ decision: 'confirmed', differences: [] });
  });
});

describe('registering a patient with the study is one transaction', () => {
  let broken: Workstation;
  afterAll(async () => broken?.app.close());

  it('a failure while storing the study leaves neither the patient nor the study', async () => {
    const real = defaultImagingEngines();
    // The fit "succeeds" with maps the store cannot write: the save throws after the patient row was inserted.
    broken = await setUpWorkstation(
      { imaging: { importRoots: [root] } },
      { imagingEngines: { ...real, fitTensors: async (series, options) => ({ ...(await real.fitTensors(series, options)), fa: undefined as unknown as Float32Array }) } },
    );
    const { connection } = await broken.signInAs('radiologist');
    const job = await connection.ok('imaging.import', { path: path.join(root, 'atomic'), createPatient: { givenName: 'Anna', familyName: 'Atomic', birthDate: '1985-05-05', sex: 'female' } });
    const failed = await finishedJob(connection, job.id);
    expect(failed.state).toBe('failed');
    const { connection: phys } = await broken.signInAs('physician');
    expect((await phys.ok('patients.list', { query: 'ATOM-1' })).patients).toEqual([]);
    expect((await phys.ok('patients.list', { query: 'Atomic' })).patients).toEqual([]);
    expect((await connection.ok('imaging.studies', {})).studies).toEqual([]);
    const key = await storeKey(broken.config.dataDir);
    const db = openEncryptedDatabase(`${broken.config.dataDir}/neuroward.db`, key, { create: false });
    try {
      const { ledger } = repositories(db, () => new Date());
      const entries = ledger.list({ limit: 100 }).entries;
      expect(entries.some((e) => e.action === 'imaging.import' && e.outcome === 'error')).toBe(true);
      // Only the synthetic demo patients of the set-up were ever created.
      expect(entries.filter((e) => e.action === 'patient.create' && e.actorRole === 'radiologist')).toEqual([]);
      expect(db.prepare("SELECT count(*) AS n FROM outbox WHERE resource_json LIKE '%ATOM-1%'").get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});
