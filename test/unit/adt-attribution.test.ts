/**
 * The pure parts of ADT: whose a reading is (vitals/occupancy.ts attributeReading) and the FHIR ids of
 * bed and ward Locations (fhir/resources.ts), which must be valid FHIR ids and never shared by two beds.
 */
import { describe, expect, it } from 'vitest';
import { attributeReading, type BedOccupancy, type BedOccupant } from '../../src/main/vitals/occupancy.js';
import { bedLocationId, toFhirEncounter, wardLocationId } from '../../src/main/fhir/resources.js';

const ADA: BedOccupant = {
  admissionId: '00000000-0000-4000-8000-0000000000a1',
  patientId: '00000000-0000-4000-8000-0000000000ad',
  mrn: 'SYN-ADA',
  name: 'Ada Synthetica',
  restricted: false,
  synthetic: true,
  since: '2026-01-01T10:00:00.000Z',
  by: 'Nurse',
};
const FROM = Date.parse(ADA.since);

/** Ada in bed 4A/1 from 10:00, nobody elsewhere. */
const occupancy: BedOccupancy = {
  occupantAt: (bedKey, at) => (bedKey === '4A/1' && at >= FROM ? ADA : null),
  bedOfPatientAt: (ref, at) => ((ref === `Patient/${ADA.patientId}` || ref === `mrn:${ADA.mrn}`) && at >= FROM ? '4A/1' : null),
  occupied: () => new Map([['4A/1', ADA]]),
};

describe('attributeReading', () => {
  it('gives an admitted bed’s reading to the admitted patient, whether the monitor names them (either way) or nobody', () => {
    for (const ref of [undefined, `Patient/${ADA.patientId}`, `mrn:${ADA.mrn}`]) {
      expect(attributeReading(occupancy, '4A/1', ref, FROM + 1)).toEqual({ patientRef: `Patient/${ADA.patientId}`, monitorPatientRef: null, conflict: null, problem: null });
    }
  });

  it('keeps a monitor’s other patient beside the reading, attributes it to the admission, and says what is wrong', () => {
    const a = attributeReading(occupancy, '4A/1', 'mrn:SOMEONE-ELSE', FROM + 1);
    expect(a).toMatchObject({ patientRef: `Patient/${ADA.patientId}`, monitorPatientRef: 'mrn:SOMEONE-ELSE', conflict: 'monitor-mismatch' });
    expect(a.problem).toBe('Monitor reports a different patient (MRN SOMEONE-ELSE) from the one admitted to bed 4A/1 (MRN SYN-ADA): check the monitor and the admission');
  });

  it('uses the monitor’s reference where no admission covers the reading, as before admissions; marks a patient admitted elsewhere', () => {
    expect(attributeReading(occupancy, '4A/1', undefined, FROM - 1)).toMatchObject({ patientRef: null, conflict: null });
    expect(attributeReading(occupancy, '4A/1', 'mrn:X-1', FROM - 1)).toMatchObject({ patientRef: 'mrn:X-1', conflict: null });
    expect(attributeReading(null, '4A/1', 'mrn:X-1', FROM + 1)).toMatchObject({ patientRef: 'mrn:X-1', conflict: null });
    const elsewhere = attributeReading(occupancy, '4A/2', `mrn:${ADA.mrn}`, FROM + 1);
    expect(elsewhere).toMatchObject({ patientRef: `mrn:${ADA.mrn}`, monitorPatientRef: `mrn:${ADA.mrn}`, conflict: 'admitted-elsewhere' });
    expect(elsewhere.problem).toContain('who is admitted to bed 4A/1');
  });
});

describe('Location ids', () => {
  const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
  it('are readable where the names allow, valid FHIR ids always, and distinct for distinct beds', () => {
    expect(bedLocationId('4A', '7')).toBe('4A-7');
    expect(wardLocationId('4A')).toBe('ward.4A');
    const beds: [string, string][] = [
      ['4A', '7'],
      ['4', 'A-7'],
      ['4-A', '7'],
      ['4_A', '7'],
      ['4A', '7_1'],
      ['bed', '0123456789abcdef0123456789abcdef'],
      ['W'.repeat(32), 'B'.repeat(32)],
    ];
    const ids = beds.map(([w, b]) => bedLocationId(w, b));
    for (const id of ids) expect(id).toMatch(FHIR_ID);
    expect(new Set(ids).size).toBe(beds.length);
    for (const w of ['4A', '4-A', '4_A', 'W'.repeat(32)]) expect(wardLocationId(w)).toMatch(FHIR_ID);
    expect(new Set(['4A', '4-A', '4_A'].map(wardLocationId)).size).toBe(3);
  });
});

describe('toFhirEncounter', () => {
  it('is an inpatient encounter with every bed as a Location and its period; finished once discharged', () => {
    const encounter = toFhirEncounter({
      id: '00000000-0000-4000-8000-0000000000e1',
      version: 3,
      patient: { id: ADA.patientId, synthetic: true, restricted: true },
      stays: [
        { ward: '4A', bed: '1', admittedAt: '2026-01-01T10:00:00.000Z', dischargedAt: '2026-01-01T12:00:00.000Z', reason: 'from ED' },
        { ward: '4A', bed: '2', admittedAt: '2026-01-01T12:00:00.000Z', dischargedAt: '2026-01-02T09:00:00.000Z', reason: null },
      ],
      finishedAt: '2026-01-02T09:00:00.000Z',
      updatedAt: '2026-01-02T09:00:00.000Z',
    });
    expect(encounter).toMatchObject({
      resourceType: 'Encounter',
      status: 'finished',
      class: { code: 'IMP' },
      subject: { reference: `Patient/${ADA.patientId}` },
      period: { start: '2026-01-01T10:00:00.000Z', end: '2026-01-02T09:00:00.000Z' },
      meta: { versionId: '3', tag: [{ code: 'HTEST' }], security: [{ code: 'R' }] },
      reasonCode: [{ text: 'from ED' }],
    });
    expect(encounter.location?.map((l) => [l.location.reference, l.status, l.period?.end])).toEqual([
      ['Location/4A-1', 'completed', '2026-01-01T12:00:00.000Z'],
      ['Location/4A-2', 'completed', '2026-01-02T09:00:00.000Z'],
    ]);
  });
});
