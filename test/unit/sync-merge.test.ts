/** Merge by field (src/main/fhir/sync/merge.ts): expected copies written out by hand from the two inputs. */
import { describe, expect, it } from 'vitest';
import type { Patient } from '@medplum/fhirtypes';
import { fieldDifferences, mergeByField } from '../../src/main/fhir/sync/merge.js';
import type { NwError } from '../../src/shared/errors.js';

const base: Patient = { resourceType: 'Patient', id: 'p1', gender: 'female', birthDate: '1970-01-01', name: [{ family: 'Base' }] };
const mine: Patient = { resourceType: 'Patient', id: 'p1', meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] }, gender: 'female', birthDate: '1970-12-31', name: [{ family: 'Mine' }] };
const theirs: Patient = { resourceType: 'Patient', id: 'p1', meta: { versionId: '7' }, gender: 'other', birthDate: '1970-01-01', name: [{ family: 'Theirs' }], telecom: [{ system: 'phone', value: '123' }] };

describe('merge by field', () => {
  it('lists each top-level element with who changed it, identity and meta left out', () => {
    expect(fieldDifferences(base, mine, theirs)).toEqual([
      { field: 'birthDate', base: '"1970-01-01"', mine: '"1970-12-31"', theirs: '"1970-01-01"', differs: true, changedByMe: true, changedByThem: false },
      { field: 'gender', base: '"female"', mine: '"female"', theirs: '"other"', differs: true, changedByMe: false, changedByThem: true },
      { field: 'name', base: '[{"family":"Base"}]', mine: '[{"family":"Mine"}]', theirs: '[{"family":"Theirs"}]', differs: true, changedByMe: true, changedByThem: true },
      { field: 'telecom', base: null, mine: null, theirs: '[{"system":"phone","value":"123"}]', differs: true, changedByMe: false, changedByThem: true },
    ]);
  });

  it('takes each differing element from the chosen side, identity and meta (our labels) from mine', () => {
    expect(mergeByField(mine, theirs, { birthDate: 'mine', gender: 'theirs', name: 'theirs', telecom: 'mine' })).toEqual({
      resourceType: 'Patient',
      id: 'p1',
      meta: mine.meta,
      gender: 'other',
      birthDate: '1970-12-31',
      name: [{ family: 'Theirs' }],
    });
    expect(mergeByField(mine, theirs, { birthDate: 'theirs', gender: 'mine', name: 'mine', telecom: 'theirs' })).toMatchObject({ birthDate: '1970-01-01', gender: 'female', name: [{ family: 'Mine' }], telecom: [{ value: '123' }] });
  });

  it('refuses an unchosen differing element, an unknown one, and two different resources', () => {
    const refusal = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return error as NwError;
      }
      throw new Error('no refusal');
    };
    expect(refusal(() => mergeByField(mine, theirs, { birthDate: 'mine', gender: 'theirs' }))).toMatchObject({ code: 'bad-request', message: expect.stringContaining('name, telecom') });
    expect(refusal(() => mergeByField(mine, theirs, { birthDate: 'mine', gender: 'theirs', name: 'mine', telecom: 'mine', nmae: 'mine' }))).toMatchObject({ code: 'bad-request', message: expect.stringContaining('nmae') });
    expect(refusal(() => mergeByField(mine, { ...theirs, id: 'p2' }, {}))).toMatchObject({ code: 'bad-request' });
  });
});
