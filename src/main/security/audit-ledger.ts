/**
 * The audit ledger: append-only and hash-chained. Each entry stores the SHA-256 of the previous
 * entry (prev_hash) and its own hash over its content and prev_hash; `audit_head` records the last
 * seq and hash, moved in the same transaction, so entries cut off the end are seen too.
 * Appends must run inside the caller's transaction: the change and its entry commit together.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Db } from '../store/database.js';
import type { AuditEntryView, AuditProblem, AuditVerifyResult } from '../../shared/ipc.js';

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

/** A lone UTF-16 surrogate: a high one not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/** How JSON.stringify writes a lone surrogate (it writes well-formed pairs as they are). */
const ESCAPED_SURROGATE = /\\ud[89a-f][0-9a-f]{2}/i;

/**
 * The string as well-formed UTF-16, every lone surrogate replaced by U+FFFD, as
 * String.prototype.toWellFormed does. Only such a string is stored as exactly the UTF-8 it reads back
 * as: SQLite keeps a lone surrogate as invalid UTF-8 and returns U+FFFD for it.
 */
export function toWellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\ufffd');
}

/** Text as the ledger stores and hashes it: a string, well-formed. */
function canonicalText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return toWellFormed(typeof value === 'string' ? value : String(value));
}

function wellFormedJsonValue(value: unknown): unknown {
  if (typeof value === 'string') return toWellFormed(value);
  if (Array.isArray(value)) return value.map(wellFormedJsonValue);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, v]) => [toWellFormed(key), wellFormedJsonValue(v)]));
  }
  return value;
}

/**
 * An entry's detail as stored: JSON whose strings (keys too, at any depth) hold no lone surrogate.
 * JSON.stringify writes a lone surrogate as a `\udXXX` escape, which would store fine but parse back
 * into a lone surrogate; those strings get U+FFFD instead. JSON without such an escape is left as
 * JSON.stringify wrote it, byte for byte, as entries have always been written.
 */
export function canonicalDetailJson(detail: Record<string, unknown> | null | undefined): string | null {
  if (detail === null || detail === undefined) return null;
  const json = JSON.stringify(detail) as string | undefined;
  if (json === undefined) return null;
  if (!ESCAPED_SURROGATE.test(json)) return toWellFormed(json);
  return JSON.stringify(wellFormedJsonValue(JSON.parse(json)));
}

/**
 * SHA-256 over prev_hash, a newline and the JSON array of the entry's stored content, as UTF-8.
 * Stored text is always well-formed (see append), so this hashes exactly the bytes SQLite holds and
 * reads back; the same well-forming here makes a not-yet-stored body hash as it will be stored.
 * seq is deliberately outside the hash: moving an intact entry shows as a reorder, not an edit.
 */
export function hashAuditContent(row: Omit<AuditRow, 'seq' | 'hash'>): string {
  const text = (value: string | null): string | null => (value === null ? null : toWellFormed(value));
  const content = JSON.stringify([
    text(row.id),
    text(row.recorded_at),
    text(row.actor_user_id),
    text(row.actor_username),
    text(row.actor_role),
    text(row.session_ref),
    text(row.connection),
    text(row.action),
    text(row.channel),
    row.outcome,
    text(row.outcome_detail),
    text(row.entity_type),
    text(row.entity_id),
    text(row.patient_id),
    row.break_glass,
    text(row.detail_json),
  ]);
  return createHash('sha256').update(row.prev_hash, 'utf8').update('\n', 'utf8').update(content, 'utf8').digest('hex');
}

/** At most this many problems are listed by default (all are counted; see AuditVerifyResult.unlisted). */
export const MAX_LISTED_PROBLEMS = 1000;

const GUARD_TRIGGERS = ['audit_log_no_update', 'audit_log_no_delete'];

const entryRange = (from: number, to: number): string => (from === to ? `Entry #${from} was` : `Entries #${from}–#${to} were`);

/** What `audit.verify` records about a verification in its own ledger entry. */
export function verifySummary(result: AuditVerifyResult): Record<string, unknown> {
  const kinds = [...new Set(result.problems.map((p) => p.kind))];
  return { ok: result.ok, entries: result.entries, problem: result.problem?.kind ?? null, problems: result.problems.length + result.unlisted, kinds };
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
    // The one place text enters the ledger: every string is made well-formed here, before it is
    // hashed and stored, so the hash covers exactly what SQLite keeps (see toWellFormed).
    const body: Omit<AuditRow, 'seq' | 'hash'> = {
      id: randomUUID(),
      recorded_at: this.now().toISOString(),
      actor_user_id: canonicalText(input.actor?.userId),
      actor_username: canonicalText(input.actor?.username),
      actor_role: canonicalText(input.actor?.role),
      session_ref: canonicalText(input.sessionRef),
      connection: canonicalText(input.connection),
      action: canonicalText(input.action) as string, // NOT NULL: the store refuses an entry without one
      channel: canonicalText(input.channel),
      outcome: input.outcome,
      outcome_detail: canonicalText(input.outcomeDetail),
      entity_type: canonicalText(input.entityType),
      entity_id: canonicalText(input.entityId),
      patient_id: canonicalText(input.patientId),
      break_glass: input.breakGlass ? 1 : 0,
      detail_json: canonicalDetailJson(input.detail),
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
      // A part of the action's name, as people type it in a filter box ("break" finds auth.break-glass).
      where.push('instr(lower(action), lower(@action)) > 0');
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

  /**
   * Walks the whole chain and names every problem, in chain order: edited entries (content no longer
   * matching the hash, or a hash recomputed), deleted runs, reordered entries, entries cut off the end
   * or added past the head, and a removed append-only guard. After each problem the walk picks up
   * again from the entry it is at, so one broken entry never hides a later one.
   */
  verify(options: { maxProblems?: number } = {}): AuditVerifyResult {
    const checkedAt = this.now().toISOString();
    const maxProblems = options.maxProblems ?? MAX_LISTED_PROBLEMS;
    const problems: AuditProblem[] = [];
    let unlisted = 0;
    const add = (problem: AuditProblem): void => {
      if (problems.length < maxProblems) problems.push(problem);
      else unlisted += 1;
    };
    // Consecutive edited entries are one problem (a run), so editing every entry is not a flood.
    let edits: { first: AuditRow; lastSeq: number } | null = null;
    const flushEdits = (): void => {
      if (!edits) return;
      const { first, lastSeq } = edits;
      edits = null;
      add(
        first.seq === lastSeq
          ? { seq: first.seq, kind: 'edited', message: `Entry #${first.seq} (${first.action}, ${first.recorded_at}) was edited: its content no longer matches its hash.` }
          : { seq: first.seq, kind: 'edited', message: `Entries #${first.seq}–#${lastSeq} (from ${first.action}, ${first.recorded_at}) were edited: their content no longer matches their hashes.` },
      );
    };
    const report = (problem: AuditProblem): void => {
      flushEdits();
      add(problem);
    };
    const locate = this.hashLocator();
    // Entries found out of place (and the entries they point to): breaks next to them are one reorder.
    const misplaced = new Set<number>();

    let prev: AuditRow | null = null;
    let lastEditedSeq = -1;
    let count = 0;
    for (const row of this.db.prepare('SELECT * FROM audit_log ORDER BY seq').iterate() as Iterable<AuditRow>) {
      count += 1;
      const prevSeq = prev?.seq ?? 0;
      if (row.prev_hash !== (prev?.hash ?? GENESIS_HASH)) {
        const owner = row.prev_hash === GENESIS_HASH ? 0 : locate(row.prev_hash);
        if (owner !== null) {
          const consequence = misplaced.has(row.seq) || misplaced.has(prevSeq) || misplaced.has(owner);
          misplaced.add(row.seq);
          if (owner > 0) misplaced.add(owner);
          if (!consequence) {
            const belongs = owner === 0 ? 'belongs at the start of the chain' : `belongs right after entry #${owner}`;
            report({ seq: row.seq, kind: 'reordered', message: `Entry #${row.seq} (${row.action}) ${belongs} but is stored ${prevSeq === 0 ? 'first' : `after #${prevSeq}`}: entries were reordered.` });
          }
        } else if (row.seq > prevSeq + 1) {
          report({ seq: prevSeq + 1, kind: 'deleted', message: `${entryRange(prevSeq + 1, row.seq - 1)} deleted: entry #${row.seq} points to an entry that no longer exists.` });
        } else if (prevSeq === 0) {
          report({ seq: row.seq, kind: 'deleted', message: `The first entries of the chain were deleted (and the rest renumbered), or entry #${row.seq} was rewritten: it points to a predecessor that no entry is.` });
        } else if (lastEditedSeq !== prevSeq) {
          // (An entry already named as edited whose hash no longer links is that same edit.)
          report({
            seq: prevSeq,
            kind: 'edited',
            message: `Entry #${prevSeq} (${prev!.action}, ${prev!.recorded_at}) was rewritten with its hash recomputed, or entries after it were deleted and the rest renumbered: entry #${row.seq} points to a hash that no entry has.`,
          });
        }
      } else if (row.seq !== prevSeq + 1) {
        const linked = prevSeq === 0 ? 'to start the chain' : `to #${prevSeq}`;
        report({ seq: prevSeq + 1, kind: 'deleted', message: `${entryRange(prevSeq + 1, row.seq - 1)} deleted and entry #${row.seq} re-linked ${linked}, or seq numbers were changed.` });
      }
      if (hashAuditContent(row) !== row.hash) {
        if (edits !== null && lastEditedSeq === prevSeq) edits.lastSeq = row.seq;
        else {
          flushEdits();
          edits = { first: row, lastSeq: row.seq };
        }
        lastEditedSeq = row.seq;
      }
      prev = row;
    }
    flushEdits();

    const lastSeq = prev?.seq ?? 0;
    const lastHash = prev?.hash ?? GENESIS_HASH;
    const head = this.db.prepare('SELECT seq, hash FROM audit_head WHERE id = 1').get() as { seq: number; hash: string } | undefined;
    if (!head) {
      if (count > 0) report({ seq: lastSeq + 1, kind: 'truncated', message: `The chain's head record is missing, so entries cut off the end cannot be ruled out (the table ends at #${lastSeq}).` });
    } else {
      const headOwner = head.hash === lastHash && count > 0 ? lastSeq : head.hash === GENESIS_HASH ? 0 : locate(head.hash);
      if (headOwner === null) {
        if (head.seq > lastSeq) {
          report({ seq: lastSeq + 1, kind: 'truncated', message: `${entryRange(lastSeq + 1, head.seq)} deleted from the end of the chain (the head records #${head.seq}, the table ends at ${count ? `#${lastSeq}` : 'nothing'}).` });
        } else if (head.seq === lastSeq) {
          // (An entry already named as edited whose hash no longer matches the head is that same edit.)
          if (lastEditedSeq !== lastSeq) {
            report({ seq: lastSeq, kind: 'edited', message: `Entry #${lastSeq} (${prev!.action}, ${prev!.recorded_at}) was rewritten with its hash recomputed: the head still records its original hash.` });
          }
        } else {
          report({ seq: head.seq + 1, kind: 'added', message: `${entryRange(head.seq + 1, lastSeq)} added outside the ledger: the head records #${head.seq} with a hash that no entry has.` });
        }
      } else {
        if (headOwner !== head.seq && !misplaced.has(headOwner)) {
          report(
            head.seq > headOwner
              ? { seq: headOwner, kind: 'deleted', message: `The head records entry #${head.seq}, but that entry is stored as #${headOwner}: entries before it were deleted and the rest renumbered.` }
              : { seq: head.seq, kind: 'added', message: `The head records entry #${head.seq}, but that entry is stored as #${headOwner}: entries were inserted before it, or renumbered.` },
          );
        }
        // Entries stored after the head's entry, other than ones already named as out of place.
        let first = 0;
        let last = 0;
        let added = 0;
        for (const seq of this.db.prepare('SELECT seq FROM audit_log WHERE seq > ? ORDER BY seq').pluck().iterate(headOwner) as Iterable<number>) {
          if (misplaced.has(seq)) continue;
          if (added === 0) first = seq;
          last = seq;
          added += 1;
        }
        if (added > 0) {
          const what = added === last - first + 1 ? entryRange(first, last) : `${added} entries from #${first} to #${last} were`;
          report({ seq: first, kind: 'added', message: `${what} added outside the ledger: they follow the head the ledger recorded (#${head.seq}).` });
        }
      }
    }

    const guards = this.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'`).all() as { name: string }[];
    const missing = GUARD_TRIGGERS.filter((name) => !guards.some((g) => g.name === name));
    if (missing.length) {
      report({ seq: 0, kind: 'guard-removed', message: `The append-only guard was removed (${missing.join(', ')}): someone changed the schema, so entries could be edited or deleted without it.` });
    }

    return { ok: problems.length === 0 && unlisted === 0, entries: count, headSeq: lastSeq, headHash: lastHash, problems, unlisted, problem: problems[0] ?? null, checkedAt };
  }

  /**
   * Finds the entry whose stored hash is `hash` (its seq), or null. The first call indexes the table
   * by a hash prefix (only when the chain has a break, so intact chains pay nothing); a prefix hit is
   * confirmed by seq, and a prefix shared by two entries falls back to a scan.
   */
  private hashLocator(): (hash: string) => number | null {
    let index: Map<string, number> | null = null;
    const PREFIX = 16;
    return (hash) => {
      if (!index) {
        index = new Map();
        for (const r of this.db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq').iterate() as Iterable<{ seq: number; hash: string }>) {
          const key = r.hash.slice(0, PREFIX);
          if (!index.has(key)) index.set(key, r.seq);
        }
      }
      const candidate = index.get(hash.slice(0, PREFIX));
      if (candidate === undefined) return null;
      const at = this.db.prepare('SELECT hash FROM audit_log WHERE seq = ?').pluck().get(candidate) as string | undefined;
      if (at === hash) return candidate;
      const found = this.db.prepare('SELECT seq FROM audit_log WHERE hash = ? ORDER BY seq LIMIT 1').pluck().get(hash) as number | undefined;
      return found ?? null;
    };
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
