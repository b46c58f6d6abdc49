/**
 * One access check for every channel that returns a patient's data (security review, issue 7): a
 * restricted patient's record AND images need break-glass, for every role that may read them at all;
 * an unrestricted patient's do not; every read under a grant is audited as break-glass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESTRICTED_MESSAGE, PatientAccess } from '../../src/main/security/patient-access.js';
import type { Session } from '../../src/main/security/sessions.js';
import { setUpWorkstation, type TestConnection, type Workstation } from '../support/harness.js';
import { finishedJob } from '../support/imaging-jobs.js';
import { sharedData, SHARED_DATA } from '../support/shared-data.js';

let ws: Workstation;
let radiologist: TestConnection;
let restrictedStudy: string;
let openStudy: string;
let restrictedPatient: string;

async function imported(connection: TestConnection, patientId: string): Promise<string> {
  // The GE sample's DICOM names patient "dicom": linking it to these records is an override (with its reason).
  const job = await connection.ok('imaging.import', { path: sharedData('dwi-ge', 'In', '01_Ax_DWI_TENSOR_R2'), mask: true, patientId, override: 'anonymised sample series used as this test patient' });
  const done = await finishedJob(connection, job.id, 60_000);
  if (done.state !== 'done' || !done.studyId) throw new Error(`import failed: ${done.error}`);
  return done.studyId;
}

beforeAll(async () => {
  ws = await setUpWorkstation({ imaging: { importRoots: [SHARED_DATA] } });
  const { connection: physician } = await ws.signInAs('physician');
  restrictedPatient = (await physician.ok('patients.create', { givenName: 'Veronica', familyName: 'Withheld', birthDate: '1961-02-03', sex: 'female', restricted: true })).id;
  const open = (await physician.ok('patients.create', { givenName: 'Oscar', familyName: 'Openrecord', birthDate: '1970-04-05', sex: 'male' })).id;
  ({ connection: radiologist } = await ws.signInAs('radiologist'));
  restrictedStudy = await imported(radiologist, restrictedPatient);
  openStudy = await imported(radiologist, open);
}, 120_000);
afterAll(async () => ws?.app.close());

describe('restricted patients', () => {
  it('without break-glass: the record, the study list and the image volumes are all withheld', async () => {
    for (const role of ['radiologist', 'physician'] as const) {
      const { connection } = await ws.signInAs(role);
      expect(await connection.fail('patients.get', { id: restrictedPatient })).toEqual({ code: 'forbidden', message: RESTRICTED_MESSAGE });
      const { studies, restrictedHidden } = await connection.ok('imaging.studies', {});
      expect(studies.map((s) => s.id)).toContain(openStudy);
      expect(studies.map((s) => s.id)).not.toContain(restrictedStudy);
      expect(restrictedHidden).toBe(1);
      expect(await connection.fail('imaging.volume', { studyId: restrictedStudy, volume: 'fa' })).toEqual({ code: 'forbidden', message: RESTRICTED_MESSAGE });
      expect(await connection.fail('imaging.volume', { studyId: restrictedStudy, volume: { dwi: 0 } })).toEqual({ code: 'forbidden', message: RESTRICTED_MESSAGE });
      // An unrestricted patient's images need nothing more than the role.
      expect((await connection.ok('imaging.volume', { studyId: openStudy, volume: 'fa' })).studyId).toBe(openStudy);
    }
  });

  it('with break-glass: readable, and each read is audited as break-glass with the patient named', async () => {
    const { connection } = await ws.signInAs('radiologist');
    await connection.ok('auth.breakGlass', { reason: 'urgent stroke review, patient unconscious in resus', minutes: 5 });
    const { studies, restrictedHidden } = await connection.ok('imaging.studies', {});
    expect(studies.map((s) => s.id)).toContain(restrictedStudy);
    expect(restrictedHidden).toBe(0);
    const fa = await connection.ok('imaging.volume', { studyId: restrictedStudy, volume: 'fa' });
    expect(fa.studyId).toBe(restrictedStudy);
    expect((await connection.ok('patients.get', { id: restrictedPatient })).familyName).toBe('Withheld');

    const { connection: admin } = await ws.signInAs('admin');
    const reads = (await admin.ok('audit.list', { limit: 100, action: 'imaging.read' })).entries;
    const granted = reads.find((e) => e.entityId === restrictedStudy && e.outcome === 'success')!;
    expect(granted).toMatchObject({ breakGlass: true, patientId: restrictedPatient });
    const refused = reads.filter((e) => e.entityId === restrictedStudy && e.outcome === 'denied');
    expect(refused.length).toBe(4);
    for (const e of refused) expect(e).toMatchObject({ breakGlass: false, patientId: restrictedPatient });
  });

  it('the grant ends: the images are withheld again', async () => {
    const { connection } = await ws.signInAs('radiologist');
    await connection.ok('auth.breakGlass', { reason: 'urgent stroke review, patient unconscious in resus', minutes: 5 });
    expect((await connection.ok('imaging.volume', { studyId: restrictedStudy, volume: 'md' })).studyId).toBe(restrictedStudy);
    ws.clock.advance(5 * 60_000 + 1);
    expect((await connection.fail('imaging.volume', { studyId: restrictedStudy, volume: 'md' })).code).toBe('forbidden');
    ws.clock.advance(-(5 * 60_000 + 1));
  });
});

describe('patient references from bedside monitors', () => {
  const session = (breakGlass: boolean) => ({ breakGlass: breakGlass ? { reason: 'r', until: Number.MAX_SAFE_INTEGER } : null }) as Session;
  const records = new Map([
    ['p-restricted', { restricted: true, mrn: 'MRN-1' }],
    ['p-open', { restricted: false, mrn: 'MRN-2' }],
  ]);
  const access = new PatientAccess(() => ({
    restrictedById: (id) => records.get(id)?.restricted ?? null,
    idByMrn: (mrn) => [...records].find(([, r]) => r.mrn === mrn)?.[0] ?? null,
  }));

  it('resolves Patient/<id> and mrn:<MRN> to the same record and applies the same rule', () => {
    for (const ref of ['Patient/p-restricted', 'mrn:MRN-1', 'p-restricted']) {
      expect(access.recordId(ref)).toBe('p-restricted');
      expect(access.canRead(session(false), ref)).toBe(false);
      expect(access.canRead(session(true), ref)).toBe(true);
      expect(() => access.assertCanRead(session(false), ref)).toThrow(RESTRICTED_MESSAGE);
    }
    for (const ref of ['Patient/p-open', 'mrn:MRN-2']) expect(access.canRead(session(false), ref)).toBe(true);
  });

  it('a reference to no local record is not a restricted record (and an id it names is still recorded)', () => {
    expect(access.recordId('Patient/unknown')).toBe('unknown');
    for (const ref of ['mrn:NOPE', null, undefined, '', 'Patient/']) expect(access.recordId(ref)).toBeNull();
    for (const ref of ['Patient/unknown', 'mrn:NOPE', null, undefined, '']) expect(access.canRead(session(false), ref)).toBe(true);
  });
});
