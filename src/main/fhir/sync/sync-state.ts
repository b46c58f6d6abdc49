/**
 * The sync engine's durable state (migration 11), and all its SQL. Every decision about a batch is
 * written in one transaction; the rules that make a crash at any instant harmless:
 *
 * - claim (before anything is sent): the rows' `attempts` is set (the vitals minute bundles are
 *   then no longer amended in place, vitals/observations.ts) and their ids join the server's
 *   `inflight_json`; the rows' JSON is read in the same transaction, so what is sent is what was claimed;
 * - record (after the answer): confirmed versions, conflicts, dead letters, finished rows, the cursor,
 *   and the rows still in doubt (inflight_json) together. A crash before this commit leaves the rows
 *   unfinished and in doubt: the next attempt reads the server first and adopts what is already there.
 */
import { StatementOwner } from '../../store/statements.js';
import type { ChangeOperation, OutboxRow, ResourceChange } from './changes.js';

export interface ServerStateRow {
  name: string;
  cursor: number;
  inflight: number[];
  consecutiveFailures: number;
  nextAttemptAt: string | null;
  lastAttemptAt: string | null;
  lastSuccessAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
}

export interface ConfirmedVersion {
  versionId: string;
  contentSha256: string;
}

export interface ConflictRecord {
  id: number;
  server: string;
  resourceType: string;
  resourceId: string;
  outboxId: number;
  localOperation: ChangeOperation;
  httpStatus: number;
  baseVersionId: string | null;
  baseJson: string | null;
  localJson: string | null;
  remoteVersionId: string | null;
  remoteJson: string | null;
  detectedAt: string;
  status: 'open' | 'kept-mine' | 'took-theirs';
  resolvedAt: string | null;
  resolvedBy: string | null;
  /** What the last keep-mine attempt sent (its answer may have been lost). */
  attemptedJson: string | null;
}

export interface DeadLetterRecord {
  id: number;
  server: string;
  outboxId: number;
  resourceType: string;
  resourceId: string;
  localOperation: ChangeOperation;
  resourceJson: string | null;
  httpStatus: number | null;
  message: string;
  outcomeJson: string | null;
  createdAt: string;
  status: 'open' | 'discarded' | 'requeued';
}

export interface NewConflict {
  change: ResourceChange;
  httpStatus: number;
  baseVersionId: string | null;
  baseJson: string | null;
  remoteVersionId: string | null;
  remoteJson: string | null;
}

export interface NewDeadLetter {
  outboxId: number;
  resourceType: string;
  resourceId: string;
  operation: ChangeOperation;
  resourceJson: string | null;
  httpStatus: number | null;
  message: string;
  outcomeJson: string | null;
}

/** Everything one batch decided, written together. */
export interface BatchOutcome {
  confirmed: { resourceType: string; id: string; versionId: string; contentSha256: string }[];
  /** Deleted on the server (or already gone): the confirmed version is forgotten. */
  deleted: { resourceType: string; id: string }[];
  conflicts: NewConflict[];
  /** Later local changes of resources with an open conflict: they replace the conflict's local side. */
  folded: ResourceChange[];
  deadLetters: NewDeadLetter[];
  finishedRowIds: number[];
  /** Decided changes of rows that are not finished yet (another change of the row waits for a retry). */
  finishedChanges: { outboxId: number; resourceType: string; id: string }[];
  /** Rows no longer in doubt: removed from inflight_json (the batch's finished rows). */
  resolvedRowIds: number[];
}

interface ServerRowDb {
  name: string;
  cursor: number;
  inflight_json: string | null;
  consecutive_failures: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  last_success_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
}

interface ConflictRowDb {
  id: number;
  server: string;
  resource_type: string;
  resource_id: string;
  outbox_id: number;
  local_operation: ChangeOperation;
  http_status: number;
  base_version_id: string | null;
  base_json: string | null;
  local_json: string | null;
  remote_version_id: string | null;
  remote_json: string | null;
  detected_at: string;
  status: ConflictRecord['status'];
  resolved_at: string | null;
  resolved_by: string | null;
  attempted_json: string | null;
}

interface DeadLetterRowDb {
  id: number;
  server: string;
  outbox_id: number;
  resource_type: string;
  resource_id: string;
  local_operation: ChangeOperation;
  resource_json: string | null;
  http_status: number | null;
  message: string;
  outcome_json: string | null;
  created_at: string;
  status: DeadLetterRecord['status'];
}

function toConflict(row: ConflictRowDb): ConflictRecord {
  return {
    id: row.id,
    server: row.server,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    outboxId: row.outbox_id,
    localOperation: row.local_operation,
    httpStatus: row.http_status,
    baseVersionId: row.base_version_id,
    baseJson: row.base_json,
    localJson: row.local_json,
    remoteVersionId: row.remote_version_id,
    remoteJson: row.remote_json,
    detectedAt: row.detected_at,
    status: row.status,
    resolvedAt: row.resolved_at,
    resolvedBy: row.resolved_by,
    attemptedJson: row.attempted_json,
  };
}

function toDeadLetter(row: DeadLetterRowDb): DeadLetterRecord {
  return {
    id: row.id,
    server: row.server,
    outboxId: row.outbox_id,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    localOperation: row.local_operation,
    resourceJson: row.resource_json,
    httpStatus: row.http_status,
    message: row.message,
    outcomeJson: row.outcome_json,
    createdAt: row.created_at,
    status: row.status,
  };
}

/** Resource types whose resources are written once and never edited: their confirmed versions expire. */
export const APPEND_ONLY_TYPES = ['Observation', 'AuditEvent'] as const;

export class SyncState extends StatementOwner {
  private iso(): string {
    return this.now().toISOString();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  ensureServer(name: string): void {
    this.sql('INSERT OR IGNORE INTO fhir_sync_servers (name) VALUES (?)').run(name);
  }

  server(name: string): ServerStateRow {
    let row = this.sql('SELECT * FROM fhir_sync_servers WHERE name = ?').get(name) as ServerRowDb | undefined;
    if (!row) {
      this.ensureServer(name);
      row = this.sql('SELECT * FROM fhir_sync_servers WHERE name = ?').get(name) as ServerRowDb;
    }
    return {
      name: row.name,
      cursor: row.cursor,
      inflight: row.inflight_json ? (JSON.parse(row.inflight_json) as number[]) : [],
      consecutiveFailures: row.consecutive_failures,
      nextAttemptAt: row.next_attempt_at,
      lastAttemptAt: row.last_attempt_at,
      lastSuccessAt: row.last_success_at,
      lastError: row.last_error,
      lastErrorAt: row.last_error_at,
    };
  }

  /** Outbox rows after `afterId` (the cursor, then the last row read) that this server has not finished, oldest first. */
  unfinishedRows(server: string, afterId: number, limit: number): OutboxRow[] {
    return this.sql(
      `SELECT o.id, o.resource_type, o.resource_id, o.operation, o.resource_json, o.fhir_valid FROM outbox o
       WHERE o.id > ? AND NOT EXISTS (SELECT 1 FROM fhir_sync_done d WHERE d.server = ? AND d.outbox_id = o.id)
       ORDER BY o.id LIMIT ?`,
    ).all(afterId, server, limit) as OutboxRow[];
  }

  /** `outboxId:Type/id` of the changes already decided in unfinished rows after the cursor (see fhir_sync_done_changes). */
  decidedChanges(server: string, cursor: number): Set<string> {
    const rows = this.sql('SELECT outbox_id, resource_type, resource_id FROM fhir_sync_done_changes WHERE server = ? AND outbox_id > ?').all(server, cursor) as {
      outbox_id: number;
      resource_type: string;
      resource_id: string;
    }[];
    return new Set(rows.map((r) => `${r.outbox_id}:${r.resource_type}/${r.resource_id}`));
  }

  /**
   * Marks every queued, not yet decided change of the resource as decided for this server (take theirs:
   * the person chose the server's copy over every local change made so far). Bundle rows are found by
   * their entry URL; a false match only records a decision for a resource the row does not hold.
   */
  supersedePending(server: string, resourceType: string, id: string): number {
    const { cursor } = this.server(server);
    const rows = this.sql(
      `SELECT o.id FROM outbox o WHERE o.id > ? AND NOT EXISTS (SELECT 1 FROM fhir_sync_done d WHERE d.server = ? AND d.outbox_id = o.id)
         AND ((o.resource_type = ? AND o.resource_id = ?) OR (o.resource_type = 'Bundle' AND instr(o.resource_json, ?) > 0))`,
    ).all(cursor, server, resourceType, id, `"url":"${resourceType}/${id}"`) as { id: number }[];
    const decided = this.sql('INSERT OR IGNORE INTO fhir_sync_done_changes (server, outbox_id, resource_type, resource_id) VALUES (?, ?, ?, ?)');
    for (const row of rows) decided.run(server, row.id, resourceType, id);
    return rows.length;
  }

  /** Claims rows for sending: attempts bumped, ids in doubt until their outcome is recorded. */
  markClaimed(server: string, rowIds: readonly number[], sentRowIds: readonly number[]): void {
    // attempts = 1 once any server started on the row (the vitals minute bundles are then no longer
    // amended in place); not counted further: each UPDATE rewrites the whole row, JSON included.
    this.sql('UPDATE outbox SET attempts = 1 WHERE attempts = 0 AND id IN (SELECT value FROM json_each(?))').run(JSON.stringify(rowIds));
    this.changeInDoubt(server, sentRowIds, []);
    this.sql('UPDATE fhir_sync_servers SET last_attempt_at = ? WHERE name = ?').run(this.iso(), server);
  }

  /**
   * inflight_json as a set: rows join it before they are sent and leave it when their outcome is
   * known. Several Bundles may be on the wire at once, so each change is applied to what is stored.
   */
  changeInDoubt(server: string, add: readonly number[], remove: readonly number[]): void {
    if (add.length === 0 && remove.length === 0) return;
    const set = new Set(this.server(server).inflight);
    for (const id of add) set.add(id);
    for (const id of remove) set.delete(id);
    this.sql('UPDATE fhir_sync_servers SET inflight_json = ? WHERE name = ?').run(set.size ? JSON.stringify([...set].sort((a, b) => a - b)) : null, server);
  }

  setValidity(rowId: number, valid: boolean): void {
    this.sql('UPDATE outbox SET fhir_valid = ? WHERE id = ?').run(valid ? 1 : 0, rowId);
  }

  confirmedVersion(server: string, resourceType: string, id: string): ConfirmedVersion | null {
    const row = this.sql('SELECT version_id, content_sha256 FROM fhir_sync_versions WHERE server = ? AND resource_type = ? AND resource_id = ?').get(server, resourceType, id) as
      | { version_id: string; content_sha256: string }
      | undefined;
    return row ? { versionId: row.version_id, contentSha256: row.content_sha256 } : null;
  }

  /** `Type/id` of every resource with an open conflict on the server (few: each waits for a person). */
  openConflictKeys(server: string): Set<string> {
    const rows = this.sql(`SELECT resource_type, resource_id FROM fhir_sync_conflicts WHERE server = ? AND status = 'open'`).all(server) as { resource_type: string; resource_id: string }[];
    return new Set(rows.map((r) => `${r.resource_type}/${r.resource_id}`));
  }

  openConflictId(server: string, resourceType: string, id: string): number | null {
    const row = this.sql(`SELECT id FROM fhir_sync_conflicts WHERE server = ? AND resource_type = ? AND resource_id = ? AND status = 'open'`).get(server, resourceType, id) as { id: number } | undefined;
    return row?.id ?? null;
  }

  /** Writes a batch's outcome (see the file comment); the caller runs it inside `transaction`. */
  recordBatch(server: string, outcome: BatchOutcome): void {
    const at = this.iso();
    const upsert = this.upsertVersion();
    for (const c of outcome.confirmed) upsert.run(server, c.resourceType, c.id, c.versionId, c.contentSha256, at);
    for (const d of outcome.deleted) this.forgetVersion(server, d.resourceType, d.id);
    const insertConflict = this.sql(
      `INSERT INTO fhir_sync_conflicts (server, resource_type, resource_id, outbox_id, local_operation, http_status, base_version_id, base_json, local_json, remote_version_id, remote_json, detected_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const c of outcome.conflicts) {
      insertConflict.run(
        server,
        c.change.resourceType,
        c.change.id,
        c.change.outboxId,
        c.change.operation,
        c.httpStatus,
        c.baseVersionId,
        c.baseJson,
        c.change.resource ? JSON.stringify(c.change.resource) : null,
        c.remoteVersionId,
        c.remoteJson,
        at,
      );
    }
    const fold = this.sql(`UPDATE fhir_sync_conflicts SET outbox_id = ?, local_operation = ?, local_json = ? WHERE server = ? AND resource_type = ? AND resource_id = ? AND status = 'open'`);
    for (const f of outcome.folded) fold.run(f.outboxId, f.operation, f.resource ? JSON.stringify(f.resource) : null, server, f.resourceType, f.id);
    for (const d of outcome.deadLetters) this.insertDeadLetter(server, d, at);
    const decided = this.sql('INSERT OR IGNORE INTO fhir_sync_done_changes (server, outbox_id, resource_type, resource_id) VALUES (?, ?, ?, ?)');
    for (const c of outcome.finishedChanges) decided.run(server, c.outboxId, c.resourceType, c.id);
    this.finishRows(server, outcome.finishedRowIds);
    this.changeInDoubt(server, [], outcome.resolvedRowIds);
  }

  insertDeadLetter(server: string, d: NewDeadLetter, at = this.iso()): void {
    this.sql(
      `INSERT INTO fhir_sync_dead_letters (server, outbox_id, resource_type, resource_id, local_operation, resource_json, http_status, message, outcome_json, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(server, d.outboxId, d.resourceType, d.resourceId, d.operation, d.resourceJson, d.httpStatus, d.message, d.outcomeJson, at);
  }

  /**
   * Marks rows finished for the server and moves its cursor over every finished row it can. Rows
   * finished in outbox order (the usual case) only move the cursor; the done set holds just the rows
   * finished while an earlier one is still unfinished.
   */
  finishRows(server: string, rowIds: readonly number[]): void {
    const { cursor } = this.server(server);
    const finished = new Set(rowIds.filter((id) => id > cursor));
    const forgetDecided = this.sql('DELETE FROM fhir_sync_done_changes WHERE server = ? AND outbox_id = ?');
    for (const id of rowIds) forgetDecided.run(server, id);
    // Walk the rows after the cursor that are not in the done set: the cursor stops at the first one
    // that is not finished now either.
    let next = cursor;
    let stopped = false;
    const walk = this.sql(
      `SELECT o.id FROM outbox o WHERE o.id > ? AND NOT EXISTS (SELECT 1 FROM fhir_sync_done d WHERE d.server = ? AND d.outbox_id = o.id) ORDER BY o.id LIMIT ?`,
    );
    while (!stopped) {
      const rows = walk.all(next, server, finished.size + 1) as { id: number }[];
      if (rows.length === 0) break;
      for (const row of rows) {
        if (!finished.has(row.id)) {
          stopped = true;
          break;
        }
        next = row.id;
      }
      if (!stopped && rows.length < finished.size + 1) break;
    }
    if (!stopped) next = Math.max(next, (this.sql('SELECT coalesce(max(id), 0) AS id FROM outbox').get() as { id: number }).id);
    const insert = this.sql('INSERT OR IGNORE INTO fhir_sync_done (server, outbox_id) VALUES (?, ?)');
    for (const id of finished) if (id > next) insert.run(server, id);
    if (next > cursor) {
      this.sql('UPDATE fhir_sync_servers SET cursor = ? WHERE name = ?').run(next, server);
      this.sql('DELETE FROM fhir_sync_done WHERE server = ? AND outbox_id <= ?').run(server, next);
    }
  }

  recordSuccess(server: string): void {
    this.sql('UPDATE fhir_sync_servers SET consecutive_failures = 0, next_attempt_at = NULL, last_success_at = ?, last_error = NULL WHERE name = ?').run(this.iso(), server);
  }

  /** A failed attempt: the error shown for the server and when to try again. */
  recordFailure(server: string, message: string, nextAttemptAt: Date | null, countsAsFailure: boolean): void {
    this.sql(
      `UPDATE fhir_sync_servers SET consecutive_failures = consecutive_failures + ?, next_attempt_at = ?, last_error = ?, last_error_at = ? WHERE name = ?`,
    ).run(countsAsFailure ? 1 : 0, nextAttemptAt?.toISOString() ?? null, message, this.iso(), server);
  }

  /** Rows this server has not finished (routing aside: rows it does not receive count until it has scanned them). */
  unfinishedCount(server: string): number {
    const { cursor } = this.server(server);
    const after = (this.sql('SELECT count(*) AS n FROM outbox WHERE id > ?').get(cursor) as { n: number }).n;
    const done = (this.sql('SELECT count(*) AS n FROM fhir_sync_done WHERE server = ?').get(server) as { n: number }).n;
    return Math.max(0, after - done);
  }

  /**
   * Retires every row all the given servers have finished: those up to the lowest cursor (a row that
   * one server finished out of order waits until that server's cursor passes it). With no server
   * configured nothing is retired: the outbox keeps everything until there is somewhere to send it.
   */
  retireFinished(servers: readonly string[]): number {
    if (servers.length === 0) return 0;
    const upto = Math.min(...servers.map((name) => this.server(name).cursor));
    const previous = (this.sql('SELECT coalesce(max(upto_id), 0) AS id FROM outbox_retired').get() as { id: number }).id;
    if (upto <= previous) return 0;
    this.sql('INSERT INTO outbox_retired (upto_id, retired_at) VALUES (?, ?)').run(upto, this.iso());
    return (this.sql('SELECT count(*) AS n FROM outbox WHERE id > ? AND id <= ?').get(previous, upto) as { n: number }).n;
  }

  /** Deletes retired rows past retention, and expired confirmed versions of append-only resources. */
  prune(policy: { keepRetiredMs: number; keepAppendOnlyVersionsMs: number }): { rows: number; versions: number } {
    const now = this.now().getTime();
    const expired = (this.sql('SELECT max(upto_id) AS id FROM outbox_retired WHERE retired_at < ?').get(new Date(now - policy.keepRetiredMs).toISOString()) as { id: number | null }).id;
    let rows = 0;
    if (expired !== null) {
      rows = this.sql('DELETE FROM outbox WHERE id <= ?').run(expired).changes;
      // Marks below the applied one are spent; the newest mark stays (it says where pending rows begin).
      this.sql('DELETE FROM outbox_retired WHERE upto_id < ? AND upto_id < (SELECT max(upto_id) FROM outbox_retired)').run(expired);
    }
    const versionCutoff = new Date(now - policy.keepAppendOnlyVersionsMs).toISOString();
    let versions = 0;
    for (const type of APPEND_ONLY_TYPES) versions += this.sql('DELETE FROM fhir_sync_versions WHERE resource_type = ? AND confirmed_at < ?').run(type, versionCutoff).changes;
    return { rows, versions };
  }

  conflicts(filter: { server?: string; status?: ConflictRecord['status'] } = {}): ConflictRecord[] {
    const rows = this.sql(
      'SELECT * FROM fhir_sync_conflicts WHERE (@server IS NULL OR server = @server) AND (@status IS NULL OR status = @status) ORDER BY id',
    ).all({ server: filter.server ?? null, status: filter.status ?? null }) as ConflictRowDb[];
    return rows.map(toConflict);
  }

  conflict(id: number): ConflictRecord | null {
    const row = this.sql('SELECT * FROM fhir_sync_conflicts WHERE id = ?').get(id) as ConflictRowDb | undefined;
    return row ? toConflict(row) : null;
  }

  updateConflictRemote(id: number, remoteVersionId: string | null, remoteJson: string | null, httpStatus: number): void {
    this.sql('UPDATE fhir_sync_conflicts SET remote_version_id = ?, remote_json = ?, http_status = ? WHERE id = ?').run(remoteVersionId, remoteJson, httpStatus, id);
  }

  setConflictAttempt(id: number, attemptedJson: string): void {
    this.sql('UPDATE fhir_sync_conflicts SET attempted_json = ? WHERE id = ?').run(attemptedJson, id);
  }

  closeConflict(id: number, status: 'kept-mine' | 'took-theirs', by: string): void {
    this.sql(`UPDATE fhir_sync_conflicts SET status = ?, resolved_at = ?, resolved_by = ? WHERE id = ? AND status = 'open'`).run(status, this.iso(), by, id);
  }

  deadLetters(filter: { server?: string; status?: DeadLetterRecord['status'] } = {}): DeadLetterRecord[] {
    const rows = this.sql(
      'SELECT * FROM fhir_sync_dead_letters WHERE (@server IS NULL OR server = @server) AND (@status IS NULL OR status = @status) ORDER BY id',
    ).all({ server: filter.server ?? null, status: filter.status ?? null }) as DeadLetterRowDb[];
    return rows.map(toDeadLetter);
  }

  deadLetter(id: number): DeadLetterRecord | null {
    const row = this.sql('SELECT * FROM fhir_sync_dead_letters WHERE id = ?').get(id) as DeadLetterRowDb | undefined;
    return row ? toDeadLetter(row) : null;
  }

  closeDeadLetter(id: number, status: 'discarded' | 'requeued', by: string): void {
    this.sql(`UPDATE fhir_sync_dead_letters SET status = ?, closed_at = ?, closed_by = ? WHERE id = ? AND status = 'open'`).run(status, this.iso(), by, id);
  }

  confirmVersion(server: string, resourceType: string, id: string, versionId: string, contentSha256: string): void {
    this.upsertVersion().run(server, resourceType, id, versionId, contentSha256, this.iso());
  }

  forgetVersion(server: string, resourceType: string, id: string): void {
    this.sql('DELETE FROM fhir_sync_versions WHERE server = ? AND resource_type = ? AND resource_id = ?').run(server, resourceType, id);
  }

  private upsertVersion() {
    return this.sql(
      `INSERT INTO fhir_sync_versions (server, resource_type, resource_id, version_id, content_sha256, confirmed_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (server, resource_type, resource_id) DO UPDATE SET version_id = excluded.version_id, content_sha256 = excluded.content_sha256, confirmed_at = excluded.confirmed_at`,
    );
  }
}
