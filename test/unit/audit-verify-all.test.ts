/**
 * Security finding 2 of issue 7: `audit verify` reports every problem it finds, in chain order, so
 * one broken entry never masks a later deletion, truncation, reorder or a removed guard. Tampering is
 * done with plain SQL on the real encrypted store, as someone holding the key would.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { openEncryptedDatabase, type Db } from '../../src/main/store/database.js';
import { applyMigrations } from '../../src/main/store/migrations.js';
import { AuditLedger, hashAuditContent, type StoredAuditEntry } from '../../src/main/security/audit-ledger.js';
import type { AuditProblem } from '../../src/shared/ipc.js';
import { tempDir } from '../support/harness.js';

const N = 12;
let db: Db;
let ledger: AuditLedger;

beforeEach(() => {
  db = openEncryptedDatabase(path.join(tempDir(), 'ledger.db'), randomBytes(32), { create: true });
  applyMigrations(db, () => new Date().toISOString());
  ledger = new AuditLedger(db, () => new Date());
  db.transaction(() => {
    for (let i = 1; i <= N; i++) ledger.append({ actor: { userId: 'u1', username: 'nurse.a', role: 'nurse' }, action: `patient.read.${i}`, outcome: 'success', patientId: `p${i}` });
  })();
});

/** Removing the guard is itself reported; tests that must tamper drop it and expect that last. */
const unguard = () => db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;');
const guardRemoved = { seq: 0, kind: 'guard-removed', message: expect.stringContaining('append-only guard was removed') };
const edit = (seq: number) => db.prepare(`UPDATE audit_log SET patient_id = 'someone-else' WHERE seq = ?`).run(seq);
const rewrite = (seq: number) => {
  const row = db.prepare('SELECT * FROM audit_log WHERE seq = ?').get(seq) as StoredAuditEntry;
  const forged = { ...row, patient_id: 'someone-else' };
  db.prepare('UPDATE audit_log SET patient_id = ?, hash = ? WHERE seq = ?').run(forged.patient_id, hashAuditContent(forged), seq);
};
const remove = (...seqs: number[]) => db.prepare(`DELETE FROM audit_log WHERE seq IN (${seqs.join(',')})`).run();
const kinds = (problems: AuditProblem[]) => problems.map((p) => `${p.kind}@${p.seq}`);

describe('audit verify reports every problem', () => {
  it('an edit of entry 3 does not hide the deletion of entry 8', () => {
    unguard();
    edit(3);
    remove(8);
    const result = ledger.verify();
    expect(result).toMatchObject({ ok: false, entries: N - 1, headSeq: N, unlisted: 0 });
    expect(result.problems).toEqual([
      { seq: 3, kind: 'edited', message: expect.stringMatching(/^Entry #3 \(patient\.read\.3, .+\) was edited: its content no longer matches its hash\.$/) },
      { seq: 8, kind: 'deleted', message: 'Entry #8 was deleted: entry #9 points to an entry that no longer exists.' },
      guardRemoved,
    ]);
    expect(result.problem).toEqual(result.problems[0]);
  });

  it('a rewritten entry (hash recomputed) does not hide a later deleted run', () => {
    unguard();
    rewrite(2);
    remove(6, 7, 8);
    expect(ledger.verify().problems).toEqual([
      { seq: 2, kind: 'edited', message: expect.stringMatching(/^Entry #2 \(patient\.read\.2, .+\) was rewritten with its hash recomputed.*entry #3 points to a hash that no entry has\.$/) },
      { seq: 6, kind: 'deleted', message: 'Entries #6–#8 were deleted: entry #9 points to an entry that no longer exists.' },
      guardRemoved,
    ]);
  });

  it('an edit does not hide entries cut off the end', () => {
    unguard();
    edit(4);
    db.prepare('DELETE FROM audit_log WHERE seq >= 10').run();
    const result = ledger.verify();
    expect(result).toMatchObject({ ok: false, entries: 9, headSeq: 9 });
    expect(kinds(result.problems)).toEqual(['edited@4', 'truncated@10', 'guard-removed@0']);
    expect(result.problems[1]!.message).toBe(`Entries #10–#${N} were deleted from the end of the chain (the head records #${N}, the table ends at #9).`);
  });

  it('a swap of two entries is one reorder, and a later deletion is still named', () => {
    unguard();
    db.exec('UPDATE audit_log SET seq = 100 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 100;');
    remove(9);
    expect(ledger.verify().problems).toEqual([
      { seq: 3, kind: 'reordered', message: 'Entry #3 (patient.read.4) belongs right after entry #4 but is stored after #2: entries were reordered.' },
      { seq: 9, kind: 'deleted', message: expect.stringContaining('Entry #9 was deleted') },
      guardRemoved,
    ]);
  });

  it('an entry moved to the end is one reorder, not also an addition past the head', () => {
    unguard();
    db.exec('UPDATE audit_log SET seq = 100 WHERE seq = 5;');
    expect(ledger.verify().problems).toEqual([{ seq: 6, kind: 'reordered', message: expect.stringContaining('Entry #6 (patient.read.6) belongs right after entry #100') }, guardRemoved]);
  });

  it('a removed guard and an edit are reported together', () => {
    db.exec('DROP TRIGGER audit_log_no_update;');
    edit(7);
    const result = ledger.verify();
    expect(result.problems).toEqual([
      { seq: 7, kind: 'edited', message: expect.stringContaining('Entry #7') },
      { seq: 0, kind: 'guard-removed', message: expect.stringContaining('(audit_log_no_update)') },
    ]);
  });

  it('edit, rewrite, deletion, reorder and truncation all in one chain', () => {
    unguard();
    edit(2);
    rewrite(4);
    remove(6);
    db.exec('UPDATE audit_log SET seq = 100 WHERE seq = 8; UPDATE audit_log SET seq = 8 WHERE seq = 9; UPDATE audit_log SET seq = 9 WHERE seq = 100;');
    db.prepare('DELETE FROM audit_log WHERE seq >= 11').run();
    expect(kinds(ledger.verify().problems)).toEqual(['edited@2', 'edited@4', 'deleted@6', 'reordered@8', 'truncated@11', 'guard-removed@0']);
  });

  it('separate edits are separate problems; a run of consecutive edits is one', () => {
    unguard();
    for (const seq of [2, 5, 6, 7, 10]) edit(seq);
    const problems = ledger.verify().problems;
    expect(kinds(problems)).toEqual(['edited@2', 'edited@5', 'edited@10', 'guard-removed@0']);
    expect(problems[1]!.message).toMatch(/^Entries #5–#7 \(from patient\.read\.5, .+\) were edited/);
  });

  it('names the last entry rewritten against the head', () => {
    unguard();
    rewrite(N);
    expect(ledger.verify().problems).toEqual([{ seq: N, kind: 'edited', message: expect.stringContaining('the head still records its original hash') }, guardRemoved]);
  });

  it('names the first entries deleted', () => {
    unguard();
    remove(1, 2);
    expect(ledger.verify().problems).toEqual([{ seq: 1, kind: 'deleted', message: 'Entries #1–#2 were deleted: entry #3 points to an entry that no longer exists.' }, guardRemoved]);
  });

  it('names entries added outside the ledger, past the recorded head', () => {
    const last = db.prepare('SELECT * FROM audit_log WHERE seq = ?').get(N) as StoredAuditEntry;
    let prevHash = last.hash;
    for (const seq of [N + 1, N + 2]) {
      const body = { ...last, id: `forged-${seq}`, action: 'patient.read', prev_hash: prevHash };
      const hash = hashAuditContent(body);
      db.prepare(
        `INSERT INTO audit_log (seq, id, recorded_at, actor_user_id, actor_username, actor_role, session_ref, connection, action, channel, outcome, outcome_detail,
           entity_type, entity_id, patient_id, break_glass, detail_json, prev_hash, hash)
         VALUES (@seq, @id, @recorded_at, @actor_user_id, @actor_username, @actor_role, @session_ref, @connection, @action, @channel, @outcome, @outcome_detail,
           @entity_type, @entity_id, @patient_id, @break_glass, @detail_json, @prev_hash, @hash)`,
      ).run({ ...body, seq, hash });
      prevHash = hash;
    }
    const result = ledger.verify();
    expect(result).toMatchObject({ ok: false, entries: N + 2, headSeq: N + 2 });
    expect(result.problems).toEqual([{ seq: N + 1, kind: 'added', message: `Entries #${N + 1}–#${N + 2} were added outside the ledger: they follow the head the ledger recorded (#${N}).` }]);
  });

  it('names a removed head record', () => {
    db.exec('DELETE FROM audit_head;');
    expect(ledger.verify().problems).toEqual([{ seq: N + 1, kind: 'truncated', message: expect.stringContaining("head record is missing") }]);
  });

  it('notices a chain emptied of every entry', () => {
    unguard();
    db.exec('DELETE FROM audit_log;');
    expect(ledger.verify()).toMatchObject({ ok: false, entries: 0, problems: [{ seq: 1, kind: 'truncated', message: expect.stringContaining(`Entries #1–#${N} were deleted from the end`) }, guardRemoved] });
  });

  it('caps the list but counts every problem, and is not ok when problems are only counted', () => {
    unguard();
    for (const seq of [2, 4, 6, 8]) edit(seq);
    const capped = ledger.verify({ maxProblems: 2 });
    expect(capped).toMatchObject({ ok: false, unlisted: 3 });
    expect(kinds(capped.problems)).toEqual(['edited@2', 'edited@4']);
    expect(ledger.verify({ maxProblems: 0 })).toMatchObject({ ok: false, problems: [], unlisted: 5, problem: null });
    expect(ledger.verify({ maxProblems: Infinity }).problems).toHaveLength(5);
  });

  it('a swap of the last two entries is one reorder', () => {
    unguard();
    db.exec(`UPDATE audit_log SET seq = 100 WHERE seq = ${N}; UPDATE audit_log SET seq = ${N} WHERE seq = ${N - 1}; UPDATE audit_log SET seq = ${N - 1} WHERE seq = 100;`);
    expect(kinds(ledger.verify().problems)).toEqual([`reordered@${N - 1}`, 'guard-removed@0']);
  });

  it('names a deletion whose next entry was re-linked over it (hash recomputed)', () => {
    unguard();
    remove(1, 2);
    const row = db.prepare('SELECT * FROM audit_log WHERE seq = 3').get() as StoredAuditEntry;
    const forged = { ...row, prev_hash: '0'.repeat(64) };
    db.prepare('UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = 3').run(forged.prev_hash, hashAuditContent(forged));
    // #4 still points to #3's original hash, so the re-linking shows too.
    expect(ledger.verify().problems).toEqual([
      { seq: 1, kind: 'deleted', message: 'Entries #1–#2 were deleted and entry #3 re-linked to start the chain, or seq numbers were changed.' },
      { seq: 3, kind: 'edited', message: expect.stringContaining('Entry #3 (patient.read.3') },
      guardRemoved,
    ]);
  });

  it('names a deletion hidden by renumbering the entries after it', () => {
    unguard();
    remove(5);
    db.exec(`UPDATE audit_log SET seq = seq - 1 WHERE seq > 5;`);
    expect(ledger.verify().problems).toEqual([
      { seq: 4, kind: 'edited', message: expect.stringContaining('or entries after it were deleted and the rest renumbered: entry #5 points to a hash that no entry has') },
      { seq: N - 1, kind: 'deleted', message: `The head records entry #${N}, but that entry is stored as #${N - 1}: entries before it were deleted and the rest renumbered.` },
      guardRemoved,
    ]);
  });

  it('names every problem scattered through a large chain', () => {
    db.transaction(() => {
      for (let i = 0; i < 6_000; i++) ledger.append({ actor: null, action: 'vitals.read', outcome: 'success', entityType: 'Bed', entityId: `A-${i % 30}` });
    })();
    unguard();
    edit(100);
    remove(2000);
    db.exec('UPDATE audit_log SET seq = 100000 WHERE seq = 3000; UPDATE audit_log SET seq = 3000 WHERE seq = 3001; UPDATE audit_log SET seq = 3001 WHERE seq = 100000;');
    remove(5000, 5001);
    const result = ledger.verify();
    expect(kinds(result.problems)).toEqual(['edited@100', 'deleted@2000', 'reordered@3000', 'deleted@5000', 'guard-removed@0']);
  });

  it('an intact chain is still intact after all the checks', () => {
    expect(ledger.verify()).toMatchObject({ ok: true, entries: N, headSeq: N, problems: [], unlisted: 0, problem: null });
  });
});
