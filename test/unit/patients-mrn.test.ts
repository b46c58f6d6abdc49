/** A generated MRN that is already taken is drawn again, not refused (found by bench/crash-durability at 58,000 records). */
import { randomBytes as realRandomBytes } from 'node:crypto';
import type * as NodeCrypto from 'node:crypto';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { tempDir } from '../support/harness.js';

// The first two draws give the same 4 bytes (a collision), then real randomness.
const draws = [Buffer.from('a423f36c', 'hex'), Buffer.from('a423f36c', 'hex')];
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof NodeCrypto>();
  return { ...actual, randomBytes: (n: number) => (n === 4 && draws.length ? draws.shift()! : actual.randomBytes(n)) };
});

const { openEncryptedDatabase } = await import('../../src/main/store/database.js');
const { applyMigrations } = await import('../../src/main/store/migrations.js');
const { PatientsRepository } = await import('../../src/main/patients/patients-repo.js');

const db = openEncryptedDatabase(path.join(tempDir('nw-mrn-'), 'store.db'), realRandomBytes(32), { create: true });
applyMigrations(db, () => new Date().toISOString());
afterAll(() => db.close());

describe('generated MRNs', () => {
  it('draws again when the MRN is taken', () => {
    const patients = new PatientsRepository(db, () => new Date());
    const base = { givenName: 'A', familyName: 'B', birthDate: '1970-01-01', sex: 'unknown', restricted: false } as const;
    const first = db.transaction(() => patients.create(base))();
    expect(first.mrn).toBe('NW-A423F36C');
    const second = db.transaction(() => patients.create(base))();
    expect(second.mrn).not.toBe('NW-A423F36C');
    expect(second.mrn).toMatch(/^NW-[0-9A-F]{8}$/);
    // An MRN the user typed is still refused when taken: that is a real conflict.
    expect(() => db.transaction(() => patients.create({ ...base, mrn: 'NW-A423F36C' }))()).toThrow('MRN NW-A423F36C is already registered.');
  });
});
