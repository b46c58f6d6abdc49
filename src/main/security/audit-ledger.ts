/**
 * The audit ledger: append-only and hash-chained. Each entry stores the SHA-256 of the previous
 * entry (prev_hash) and its own hash over its content and prev_hash; `audit_head` records the last
 * seq and hash, moved in the same transaction, so entries cut off the end are seen too.
 * Appends must run inside the caller's transaction: the change and its entry commit together.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Db } from '../store/database.js';
import type { AuditEntryView, AuditVerifyResult } from '../../shared/ipc.js';

export const GENESIS_HASH = '0'.repeat(64);

export type AuditOutcome = 'success' | 'denied' | 'error';

export interface AuditActor {
  userId: string;
  username: string;
  role: string;
}

export interface AuditInput {
  actor: AuditActor | null;
  /** A short, non-secret reference to the session (never the token itself). */
  sessionRef?: string | null;
  connection?: string | null;
  action: string;
  channel?: string | null;
  outcome: AuditOutcome;
  outcomeDetail?: string | null;
  entityType?: string | null;
  entityId?: string | null;
  patientId?: string | null;
  breakGlass?: boolean;
  detail?: Record<string, unknown> | null;
}

interface AuditRow {
  seq: number;
  id: string;
  recorded_at: string;
  actor_user_id: string | null;
  actor_username: string | null;
  actor_role: string | null;
  session_ref: string | null;
  connection: string | null;
  action: string;
  channel: string | null;
  outcome: AuditOutcome;
  outcome_detail: string | null;
  entity_type: string | null;
  entity_id: string | null;
  patient_id: string | null;
  break_glass: number;
  detail_json: string | null;
  prev_hash: string;
  hash: string;
}
export type StoredAuditEntry = AuditRow;

/** seq is deliberately outside the hash: moving an intact entry shows as a reorder, not an edit. */
export function hashAuditContent(row: Omit<AuditRow, 'seq' | 'hash'>): string {
  const content = JSON.stringify([
    row.id,
    row.recorded_at,
    row.actor_user_id,
    row.actor_username,
    row.actor_role,
    row.session_ref,
    row.connection,
    row.action,
    row.channel,
    row.outcome,
    row.outcome_detail,
    row.entity_type,
    row.entity_id,
    row.patient_id,
    row.break_glass,
    row.detail_json,
  ]);
  return createHash('sha256').update(row.prev_hash).update('\n').update(content).digest('hex');
}

export class AuditLedger {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  /** Appends one entry. Call inside a transaction together with the change it records. */
  append(input: AuditInput): StoredAuditEntry {
    if (!this.db.inTransaction) throw new Error('AuditLedger.append must run inside the transaction of the change it records');
    const head = this.db.prepare('SELECT seq, hash FROM audit_head WHERE id = 1').get() as { seq: number; hash: string } | undefined;
    const body: Omit<AuditRow, 'seq' | 'hash'> = {
      id: randomUUID(),
      recorded_at: this.now().toISOString(),
      actor_user_id: input.actor?.userId ?? null,
      actor_username: input.actor?.username ?? null,
      actor_role: input.actor?.role ?? null,
      session_ref: input.sessionRef ?? null,
      connection: input.connection ?? null,
      action: input.action,
      channel: input.channel ?? null,
      outcome: input.outcome,
      outcome_detail: input.outcomeDetail ?? null,
      entity_type: input.entityType ?? null,
      entity_id: input.entityId ?? null,
      patient_id: input.patientId ?? null,
      break_glass: input.breakGlass ? 1 : 0,
      detail_json: input.detail ? JSON.stringify(input.detail) : null,
      prev_hash: head?.hash ?? GENESIS_HASH,
    };
    const row: AuditRow = { ...body, seq: (head?.seq ?? 0) + 1, hash: hashAuditContent(body) };
    this.db
      .prepare(
        `INSERT INTO audit_log (seq, id, recorded_at, actor_user_id, actor_username, actor_role, session_ref, connection, action, channel,
           outcome, outcome_detail, entity_type, entity_id, patient_id, break_glass, detail_json, prev_hash, hash)
         VALUES (@seq, @id, @recorded_at, @actor_user_id, @actor_username, @actor_role, @session_ref, @connection, @action, @channel,
           @outcome, @outcome_detail, @entity_type, @entity_id, @patient_id, @break_glass, @detail_json, @prev_hash, @hash)`,
      )
      .run(row);
    this.db
      .prepare('INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash')
      .run(row.seq, row.hash);
    return row;
  }

  list(options: { beforeSeq?: number | undefined; limit: number; action?: string | undefined; outcome?: AuditOutcome | undefined }): { entries: AuditEntryView[]; total: number } {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: options.limit };
    if (options.beforeSeq !== undefined) {
      where.push('seq < @beforeSeq');
      params.beforeSeq = options.beforeSeq;
    }
    if (options.action) {
      where.push('action = @action');
      params.action = options.action;
    }
    if (options.outcome) {
      where.push('outcome = @outcome');
      params.outcome = options.outcome;
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const rows = this.db.prepare(`SELECT * FROM audit_log ${clause} ORDER BY seq DESC LIMIT @limit`).all(params) as AuditRow[];
    const { beforeSeq: _ignored, limit: _limit, ...countParams } = params;
    const countClause = where.filter((w) => !w.startsWith('seq <'));
    const total = (this.db.prepare(`SELECT count(*) AS n FROM audit_log ${countClause.length ? `WHERE ${countClause.join(' AND ')}` : ''}`).get(countParams) as { n: number }).n;
    return { entries: rows.map(toView), total };
  }

  /** Rows in chain order, for export (FHIR AuditEvent) and the CLI. */
  *iterate(fromSeq = 1): Generator<StoredAuditEntry> {
    yield* this.db.prepare('SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq').iterate(fromSeq) as Iterable<AuditRow>;
  }

  /** Walks the whole chain from the start and names the first problem. */
  verify(): AuditVerifyResult {
    const checkedAt = this.now().toISOString();
    let prevHash = GENESIS_HASH;
    let prevSeq = 0;
    let count = 0;
    const result = (problem: AuditVerifyResult['problem']): AuditVerifyResult => ({ ok: problem === null, entries: count, headSeq: prevSeq, headHash: prevHash, problem, checkedAt });

    for (const row of this.db.prepare('SELECT * FROM audit_log ORDER BY seq').iterate() as Iterable<AuditRow>) {
      count += 1;
      if (hashAuditContent(row) !== row.hash) {
        return result({ seq: row.seq, kind: 'edited', message: `Entry #${row.seq} (${row.action}, ${row.recorded_at}) was edited: its content no longer matches its hash.` });
      }
      if (row.prev_hash !== prevHash) {
        const elsewhere = this.db.prepare('SELECT seq FROM audit_log WHERE hash = ?').get(row.prev_hash) as { seq: number } | undefined;
        if (elsewhere) {
          return result({ seq: row.seq, kind: 'reordered', message: `Entry #${row.seq} (${row.action}) belongs right after entry #${elsewhere.seq} but is stored after #${prevSeq}: entries were reordered.` });
        }
        if (row.seq !== prevSeq + 1) {
          return result({ seq: prevSeq + 1, kind: 'deleted', message: `Entries #${prevSeq + 1}${row.seq - 1 > prevSeq + 1 ? `–#${row.seq - 1}` : ''} were deleted: entry #${row.seq} points to an entry that no longer exists.` });
        }
        return result({ seq: prevSeq, kind: prevSeq === 0 ? 'deleted' : 'edited', message: prevSeq === 0 ? `The first entries of the chain were deleted: entry #${row.seq} points to a missing predecessor.` : `Entry #${prevSeq} was rewritten (its hash recomputed): entry #${row.seq} still points to its original hash.` });
      }
      prevHash = row.hash;
      prevSeq = row.seq;
    }

    const head = this.db.prepare('SELECT seq, hash FROM audit_head WHERE id = 1').get() as { seq: number; hash: string } | undefined;
    const headSeq = head?.seq ?? 0;
    const headHash = head?.hash ?? GENESIS_HASH;
    if (headSeq !== prevSeq || headHash !== prevHash) {
      if (headSeq > prevSeq) {
        return result({ seq: prevSeq + 1, kind: 'truncated', message: `Entries #${prevSeq + 1}–#${headSeq} were deleted from the end of the chain (the head records #${headSeq}).` });
      }
      return result({ seq: headSeq + 1, kind: 'edited', message: `Entries after #${headSeq} were added outside the ledger (the head records #${headSeq}, the table ends at #${prevSeq}).` });
    }

    const guards = this.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'`).all() as { name: string }[];
    const missing = ['audit_log_no_update', 'audit_log_no_delete'].filter((name) => !guards.some((g) => g.name === name));
    if (missing.length) {
      return result({ seq: 0, kind: 'guard-removed', message: `The chain is intact, but the append-only guard was removed (${missing.join(', ')}): someone changed the schema.` });
    }
    return result(null);
  }
}

function toView(row: AuditRow): AuditEntryView {
  return {
    seq: row.seq,
    id: row.id,
    recordedAt: row.recorded_at,
    actorUserId: row.actor_user_id,
    actorUsername: row.actor_username,
    actorRole: row.actor_role,
    action: row.action,
    channel: row.channel,
    outcome: row.outcome,
    outcomeDetail: row.outcome_detail,
    entityType: row.entity_type,
    entityId: row.entity_id,
    patientId: row.patient_id,
    breakGlass: row.break_glass === 1,
    hash: row.hash,
  };
}
