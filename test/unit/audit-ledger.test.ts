/** The hash chain names edited, deleted, reordered and cut-off entries, and the append-only guard holds. */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { openEncryptedDatabase, type Db } from '../../src/main/store/database.js';
import { applyMigrations } from '../../src/main/store/migrations.js';
import { AuditLedger, hashAuditContent } from '../../src/main/security/audit-ledger.js';
import { tempDir } from '../support/harness.js';

let db: Db;
let ledger: AuditLedger;

beforeEach(() => {
  db = openEncryptedDatabase(path.join(tempDir(), 'ledger.db'), randomBytes(32), { create: true });
  applyMigrations(db, () => new Date().toISOString());
  ledger = new AuditLedger(db, () => new Date());
  db.transaction(() => {
    for (let i = 1; i <= 6; i++) ledger.append({ actor: { userId: 'u1', username: 'nurse.a', role: 'nurse' }, action: 'patient.read', outcome: 'success', patientId: `p${i}` });
  })();
});
const unguard = () => db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;');
const guardRemoved = { seq: 0, kind: 'guard-removed', message: expect.stringContaining('audit_log_no_update, audit_log_no_delete') };

describe('audit ledger', () => {
  it('verifies an intact chain', () => {
    expect(ledger.verify()).toMatchObject({ ok: true, entries: 6, headSeq: 6, problems: [], unlisted: 0, problem: null });
  });

  it('refuses updates and deletes while the guard is in place', () => {
    expect(() => db.prepare('UPDATE audit_log SET action = ? WHERE seq = 2').run('x')).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_log WHERE seq = 2').run()).toThrow(/append-only/);
  });

  it('refuses an append outside a transaction', () => {
    expect(() => ledger.append({ actor: null, action: 'x', outcome: 'success' })).toThrow(/inside the transaction/);
  });

  it('names an edited entry', () => {
    unguard();
    db.prepare(`UPDATE audit_log SET patient_id = 'someone-else' WHERE seq = 3`).run();
    const result = ledger.verify();
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ seq: 3, kind: 'edited', message: expect.stringMatching(/^Entry #3 \(patient\.read, .*\) was edited/) }, guardRemoved]);
    expect(result.problem).toEqual(result.problems[0]);
  });

  it('names an entry rewritten with a recomputed hash', () => {
    unguard();
    const row = db.prepare('SELECT * FROM audit_log WHERE seq = 3').get() as Parameters<typeof hashAuditContent>[0];
    const forged = { ...row, patient_id: 'someone-else' };
    db.prepare('UPDATE audit_log SET patient_id = ?, hash = ? WHERE seq = 3').run(forged.patient_id, hashAuditContent(forged));
    expect(ledger.verify().problems).toEqual([{ seq: 3, kind: 'edited', message: expect.stringContaining('Entry #3 (patient.read') }, guardRemoved]);
    expect(ledger.verify().problems[0]!.message).toContain('rewritten');
  });

  it('names deleted entries', () => {
    unguard();
    db.prepare('DELETE FROM audit_log WHERE seq IN (3, 4)').run();
    expect(ledger.verify().problems).toEqual([{ seq: 3, kind: 'deleted', message: expect.stringContaining('#3–#4 were deleted') }, guardRemoved]);
  });

  it('names reordered entries', () => {
    unguard();
    db.exec('UPDATE audit_log SET seq = 100 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 100;');
    // One swap is one problem, not one per broken link around it.
    expect(ledger.verify().problems).toEqual([{ seq: 3, kind: 'reordered', message: expect.stringContaining('belongs right after entry #4') }, guardRemoved]);
  });

  it('notices entries cut off the end', () => {
    unguard();
    db.prepare('DELETE FROM audit_log WHERE seq >= 5').run();
    expect(ledger.verify().problems).toEqual([{ seq: 5, kind: 'truncated', message: expect.stringContaining('#5–#6 were deleted from the end') }, guardRemoved]);
  });

  it('notices a removed guard even when the chain is intact', () => {
    unguard();
    expect(ledger.verify()).toMatchObject({ ok: false, problems: [guardRemoved], problem: guardRemoved });
  });
});
