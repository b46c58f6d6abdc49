/**
 * Security finding 2 of issue 7: text enters the ledger well-formed, so what is hashed is byte for
 * byte what SQLite stores and reads back. A lone UTF-16 surrogate used to be hashed as a JS string
 * but stored as invalid UTF-8 (read back as U+FFFD), so the entry failed verification for good.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { openEncryptedDatabase, type Db } from '../../src/main/store/database.js';
import { applyMigrations } from '../../src/main/store/migrations.js';
import { AuditLedger, canonicalDetailJson, hashAuditContent, toWellFormed, type StoredAuditEntry } from '../../src/main/security/audit-ledger.js';
import { tempDir } from '../support/harness.js';

let db: Db;
let ledger: AuditLedger;

beforeEach(() => {
  db = openEncryptedDatabase(path.join(tempDir(), 'ledger.db'), randomBytes(32), { create: true });
  applyMigrations(db, () => new Date().toISOString());
  ledger = new AuditLedger(db, () => new Date());
});

const append = (input: Parameters<AuditLedger['append']>[0]) => db.transaction(() => ledger.append(input))();
const stored = (seq: number) => db.prepare('SELECT * FROM audit_log WHERE seq = ?').get(seq) as StoredAuditEntry;
const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('toWellFormed', () => {
  it('replaces lone surrogates with U+FFFD and keeps pairs', () => {
    expect(toWellFormed('nope\ud800')).toBe('nope\ufffd');
    expect(toWellFormed('\udc00x\ud800\ud800\udc00')).toBe('\ufffdx\ufffd\ud800\udc00');
    expect(toWellFormed('\udfff\ud83d')).toBe('\ufffd\ufffd');
    expect(toWellFormed('ok 😀 ä \u0000')).toBe('ok 😀 ä \u0000');
  });

  it('agrees with String.prototype.toWellFormed on random code units', () => {
    const native = (String.prototype as { toWellFormed?: () => string }).toWellFormed;
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const units = [0x41, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xd83d, 0xde00, 0xfffd, 0xe9];
    for (let i = 0; i < 2000; i++) {
      const s = String.fromCharCode(...Array.from({ length: next() % 8 }, () => units[next() % units.length]!));
      const out = toWellFormed(s);
      expect(LONE.test(out)).toBe(false);
      expect(Buffer.from(Buffer.from(out, 'utf8').toString('utf8'), 'utf8').equals(Buffer.from(out, 'utf8'))).toBe(true);
      if (native) expect(out).toBe(native.call(s));
    }
  });
});

describe('canonical detail JSON', () => {
  it('leaves well-formed detail exactly as JSON.stringify writes it', () => {
    const detail = { note: 'Grüße 😀 "q"\n', n: [1, null, { b: true }], back: 'a literal \\ud800 is text', 10: 'x' };
    expect(canonicalDetailJson(detail)).toBe(JSON.stringify(detail));
    expect(canonicalDetailJson(null)).toBeNull();
  });

  it('replaces lone surrogates in nested values and keys, keeping order and everything else', () => {
    const json = canonicalDetailJson({ a: 'x\ud800', nested: { ['k\udc00']: ['\udbff', 'ok \\ud800 text', 2] }, z: '😀' })!;
    expect(json).toBe('{"a":"x\ufffd","nested":{"k\ufffd":["\ufffd","ok \\\\ud800 text",2]},"z":"😀"}');
    expect(LONE.test(JSON.stringify(JSON.parse(json)))).toBe(false);
    expect(/\\ud[89a-f]/i.test(json.replaceAll('\\\\', ''))).toBe(false);
  });
});

describe('the ledger stores and hashes the same bytes', () => {
  it('entries with lone surrogates in every text field and in the detail verify', () => {
    const bad = (s: string) => `${s}\ud800|\udc00|\ud83d`;
    const entry = append({
      actor: { userId: bad('u'), username: bad('nurse'), role: bad('nurse') },
      sessionRef: bad('s'),
      connection: bad('ws:1'),
      action: bad('ipc.unknown-channel'),
      channel: bad('nope'),
      outcome: 'denied',
      outcomeDetail: bad('unknown-channel: Unknown channel'),
      entityType: bad('Bed'),
      entityId: bad('A-01'),
      patientId: bad('p'),
      detail: { path: bad('/data/x'), [bad('key')]: [bad('v'), { deep: bad('d') }] },
    });
    append({ actor: null, action: 'after', outcome: 'success' });
    expect(ledger.verify()).toMatchObject({ ok: true, problems: [], entries: 2 });

    const row = stored(1);
    expect(row).toEqual(entry);
    expect(row.channel).toBe('nope\ufffd|\ufffd|\ufffd');
    expect(hashAuditContent(row)).toBe(row.hash);
    for (const [column, value] of Object.entries(row)) {
      if (typeof value === 'string') expect(LONE.test(value), column).toBe(false);
    }
    expect(JSON.parse(row.detail_json!)).toEqual({ path: '/data/x\ufffd|\ufffd|\ufffd', 'key\ufffd|\ufffd|\ufffd': ['v\ufffd|\ufffd|\ufffd', { deep: 'd\ufffd|\ufffd|\ufffd' }] });
    // The bytes SQLite holds are well-formed UTF-8 (EF BF BD), not a surrogate's invalid ED xx xx.
    const hex = (db.prepare('SELECT hex(channel) FROM audit_log WHERE seq = 1').pluck().get() as string).toLowerCase();
    expect(hex).toBe(Buffer.from('nope\ufffd|\ufffd|\ufffd', 'utf8').toString('hex'));
  });

  it('stores non-string values given for text as the text they read back as', () => {
    append({ actor: null, action: 'x', outcome: 'success', entityId: 42 as unknown as string });
    expect(stored(1).entity_id).toBe('42');
    expect(ledger.verify().ok).toBe(true);
  });

  it('hashes intact well-formed entries exactly as before (existing ledgers keep verifying)', () => {
    // Computed with the hash function as it was before this change.
    const row = {
      id: '7b0c7c43-5d1e-4b8a-9a57-1f0e3c2d4b6a',
      recorded_at: '2024-03-01T08:15:30.123Z',
      actor_user_id: 'u1',
      actor_username: 'nurse.ä',
      actor_role: 'nurse',
      session_ref: 's-1',
      connection: 'ws:1',
      action: 'patient.read',
      channel: 'patients.get',
      outcome: 'success' as const,
      outcome_detail: null,
      entity_type: 'Patient',
      entity_id: 'p1',
      patient_id: 'p1',
      break_glass: 1,
      detail_json: JSON.stringify({ note: 'Grüße 😀 "q"\n', n: [1, null] }),
      prev_hash: 'ab'.repeat(32),
    };
    expect(hashAuditContent(row)).toBe('b68ecbf9c5857917ca5b61a33c0be8fefed199cfb99442ddd9ba108288183d86');
  });
});
