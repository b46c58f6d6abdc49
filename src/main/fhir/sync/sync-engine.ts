/**
 * The FHIR sync engine: drains the outbox to every configured server, each on its own (own cursor,
 * own retry clock, own failures: one server down never holds up another), and keeps the outbox bounded
 * (rows every server has finished are retired, and deleted after the retention period).
 *
 * The outbox is the durable job queue: nothing is held only in memory, so a restart resumes where the
 * store says. Conflicts and dead letters are listed and resolved here; the IPC channels and screens
 * that show them call these methods (a later slice).
 *
 * Per server, everything (passes, conflict resolution) runs one at a time, so a resolution never races
 * a pass that is folding a newer local change into the same conflict.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Db } from '../../store/database.js';
import { Outbox } from '../../store/outbox.js';
import { NwError } from '../../../shared/errors.js';
import { FhirValidator } from '../validation.js';
import { canonicalJson, sameContent, sha256, sendable } from './changes.js';
import { FhirServerClient, outcomeText } from './server-client.js';
import { remoteContentSha256, ServerSync, type ServerPassResult } from './server-sync.js';
import { DEFAULT_SYNC_POLICY, type SyncPolicy, type SyncServer } from './settings.js';
import { SyncState, type ConflictRecord, type DeadLetterRecord } from './sync-state.js';
import { mergeByField, type FieldSide } from './merge.js';
import { PullState, ServerPull, type PulledPatientTarget, type ServerPullResult } from './pull.js';
import { PulledResources } from './pull-store.js';

export interface SyncEngineOptions {
  db: Db;
  servers: readonly SyncServer[];
  validator?: FhirValidator;
  policy?: Partial<SyncPolicy>;
  now?: () => Date;
  /** Jitter source (tests pass a seeded one). */
  random?: () => number;
  log?: (message: string) => void;
  /** Called after every background pass (e.g. to refresh the queued-changes count on screen). */
  onPass?: (report: SyncRunReport) => void;
  /** Where pulled Patients become local records (the patients domain); without it Patients are not pulled. */
  pulledPatients?: PulledPatientTarget;
}

export interface SyncRunReport {
  servers: ServerPassResult[];
  /** The pull of each server after its push (pull.ts), in the same order. */
  pulls: ServerPullResult[];
  retired: number;
  pruned: { rows: number; versions: number };
}

export interface ServerSyncStatus {
  name: string;
  baseUrl: string;
  /** Outbox rows this server has not finished. */
  pending: number;
  /** Rows that may have reached the server without an answer: read before they are resent. */
  inDoubt: number;
  consecutiveFailures: number;
  lastAttemptAt: string | null;
  lastSuccessAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  nextAttemptAt: string | null;
  openConflicts: number;
  openDeadLetters: number;
}

export type ConflictChoice = 'keep-mine' | 'take-theirs' | 'merge';

export type ConflictResolution =
  | {
      status: 'resolved';
      choice: ConflictChoice;
      conflict: ConflictRecord;
      /** take-theirs: the server's copy, for the caller to apply locally. */
      remote: Resource | null;
      /** merge: the merged copy the server now holds, for the caller to apply locally. */
      merged?: Resource;
    }
  /** The server's copy changed again since the conflict was stored: the conflict now shows that copy; decide again. */
  | { status: 'conflict-again'; conflict: ConflictRecord }
  | { status: 'refused'; conflict: ConflictRecord; message: string };

/** Runs tasks one at a time, in order. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.tail.then(task, task);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export class FhirSyncEngine {
  private readonly state: SyncState;
  private readonly syncs: ServerSync[];
  private readonly queues = new Map<string, SerialQueue>();
  private readonly policy: SyncPolicy;
  private readonly now: () => Date;
  private readonly log: (message: string) => void;
  private readonly validator: FhirValidator;
  private readonly pulls = new Map<string, ServerPull>();
  /** Local copies of the pulled types without a table of their own (the schedule reads them). */
  readonly pulledResources: PulledResources;
  private timer: NodeJS.Timeout | null = null;
  /** When the timer fires (wall clock: timers run on it, whatever `now` says). */
  private timerDueAt = 0;
  private running: Promise<SyncRunReport> | null = null;
  private stopped = true;

  constructor(private readonly options: SyncEngineOptions) {
    const names = new Set<string>();
    for (const server of options.servers) {
      if (names.has(server.name)) throw new Error(`FHIR server name "${server.name}" is used twice`);
      names.add(server.name);
    }
    this.now = options.now ?? (() => new Date());
    this.log = options.log ?? (() => undefined);
    this.policy = { ...DEFAULT_SYNC_POLICY, ...options.policy };
    this.state = new SyncState(options.db, this.now);
    const validator = options.validator ?? new FhirValidator();
    this.validator = validator;
    const random = options.random ?? Math.random;
    this.syncs = options.servers.map(
      (server) =>
        new ServerSync(server, { state: this.state, client: new FhirServerClient(server, this.now), validator, policy: this.policy, now: this.now, random, log: this.log }),
    );
    this.pulledResources = new PulledResources(options.db, this.now);
    const pullState = new PullState(options.db, this.now);
    for (const sync of this.syncs) {
      if (!sync.server.pull) continue;
      const deps = { db: options.db, state: this.state, pullState, store: this.pulledResources, client: sync.client, patients: options.pulledPatients ?? null, log: this.log };
      this.pulls.set(sync.server.name, new ServerPull(sync.server, sync.server.pull, deps));
    }
    for (const server of options.servers) {
      this.state.ensureServer(server.name);
      this.queues.set(server.name, new SerialQueue());
    }
  }

  /**
   * One pass: every server drains concurrently until done or failed, then finished rows are retired
   * and old ones pruned. A server waiting for its retry time is skipped unless `force`.
   */
  async runOnce(options: { force?: boolean } = {}): Promise<SyncRunReport> {
    // Per server: push, then pull (a change pulled is never queued, so the order only decides that a
    // local change meets the server's newer copy at the push, as a 412 conflict, before the pull sees it).
    const settled = await Promise.allSettled(
      this.syncs.map((sync) =>
        this.queue(sync.server.name).run(async () => {
          const push = await sync.pass(options);
          return { push, pull: await this.pullAfterPush(sync.server.name, push) };
        }),
      ),
    );
    const pulls = settled.map((s, i) => (s.status === 'fulfilled' ? s.value.pull : skippedPull(this.syncs[i]!.server.name, 'the push failed')));
    const servers = settled.map((s, i): ServerPassResult => {
      if (s.status === 'fulfilled') return s.value.push;
      // A bug or a store failure in one server's pass: reported for that server, the others go on.
      const message = `${this.syncs[i]!.server.name}: sync failed: ${(s.reason as Error).message}`;
      this.log(`FHIR sync: ${message}`);
      return { server: this.syncs[i]!.server.name, state: 'failed', sent: 0, adopted: 0, unchanged: 0, conflicts: 0, deadLetters: 0, requests: 0, rowsFinished: 0, error: message, nextAttemptAt: null };
    });
    const retired = this.state.transaction(() => this.state.retireFinished(this.syncs.map((s) => s.server.name)));
    const pruned = this.state.transaction(() => this.state.prune(this.policy));
    return { servers, pulls, retired, pruned };
  }

  /** The pull after a push: skipped when the push could not reach the server or waits for its retry time. */
  private async pullAfterPush(name: string, push: ServerPassResult): Promise<ServerPullResult> {
    if (!this.pulls.has(name)) return skippedPull(name, null);
    if (push.state === 'failed' || push.state === 'waiting') return skippedPull(name, `not pulled: the push ${push.state === 'failed' ? 'failed' : 'waits for its retry time'}${push.error ? ` (${push.error})` : ''}`);
    return this.runPull(name);
  }

  private async runPull(name: string): Promise<ServerPullResult> {
    try {
      return await this.pulls.get(name)!.pull();
    } catch (error) {
      // A store failure or a bug: reported for this server, the others go on.
      const message = `${name}: pull failed: ${(error as Error).message}`;
      this.log(`FHIR sync: ${message}`);
      return { ...skippedPull(name, message), state: 'failed' };
    }
  }

  /** A pull only (no push) of every server that pulls, or of one; each server one at a time with its other work. */
  async pull(options: { server?: string } = {}): Promise<ServerPullResult[]> {
    const names = this.syncs.map((s) => s.server.name).filter((n) => this.pulls.has(n) && (!options.server || n === options.server));
    if (options.server && names.length === 0) throw new NwError('not-found', `No FHIR server "${options.server}" that pulls.`);
    return Promise.all(names.map((name) => this.queue(name).run(() => this.runPull(name))));
  }

  /** Each pulling server's cursors and last outcome per resource type. */
  pullStatus(): { server: string; types: ReturnType<PullState['status']> }[] {
    const pullState = new PullState(this.options.db, this.now);
    return [...this.pulls.keys()].map((server) => ({ server, types: pullState.status(server) }));
  }

  /** Runs passes in the background: again soon after work or a kick, at each server's retry time, else every `idleMs`. */
  start(idleMs = 15_000): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0, idleMs);
  }

  /** Asks for a pass soon (e.g. after a change was queued). */
  kick(): void {
    // A timer already due within the kick's delay stays: kicks in a burst must not keep postponing the pass.
    if (this.stopped || this.running || (this.timer && this.timerDueAt <= Date.now() + 250)) return;
    this.schedule(250, 15_000);
  }

  private schedule(delayMs: number, idleMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerDueAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.runOnce();
      void this.running
        .then(
          (report) => this.options.onPass?.(report),
          (error: unknown) => this.log(`FHIR sync: pass failed: ${(error as Error).message}`),
        )
        .finally(() => {
          this.running = null;
          if (this.stopped) return;
          const dues = this.status()
            .map((s) => (s.nextAttemptAt ? Date.parse(s.nextAttemptAt) - this.now().getTime() : s.pending > 0 ? 0 : idleMs))
            .map((ms) => Math.max(0, Math.min(ms, idleMs)));
          this.schedule(dues.length ? Math.min(...dues) : idleMs, idleMs);
        });
    }, delayMs);
    this.timer.unref();
  }

  /** Stops the background passes; waits for a pass in progress to finish (its outcome is recorded). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.stop();
    await Promise.all(this.syncs.map((s) => s.client.close()));
  }

  status(): ServerSyncStatus[] {
    return this.syncs.map((sync) => {
      const name = sync.server.name;
      const row = this.state.server(name);
      return {
        name,
        baseUrl: sync.server.baseUrl,
        pending: this.state.unfinishedCount(name),
        inDoubt: row.inflight.length,
        consecutiveFailures: row.consecutiveFailures,
        lastAttemptAt: row.lastAttemptAt,
        lastSuccessAt: row.lastSuccessAt,
        lastError: row.lastError,
        lastErrorAt: row.lastErrorAt,
        nextAttemptAt: row.nextAttemptAt,
        openConflicts: this.state.conflicts({ server: name, status: 'open' }).length,
        openDeadLetters: this.state.deadLetters({ server: name, status: 'open' }).length,
      };
    });
  }

  conflicts(filter: { server?: string; status?: ConflictRecord['status'] } = {}): ConflictRecord[] {
    return this.state.conflicts(filter);
  }

  deadLetters(filter: { server?: string; status?: DeadLetterRecord['status'] } = {}): DeadLetterRecord[] {
    return this.state.deadLetters(filter);
  }

  /**
   * Resolves a conflict. keep-mine: our copy is written over the server's current version (If-Match
   * that version), so a further remote edit in between is again a conflict, not overwritten.
   * take-theirs: the server's current version (read again now; if it moved on since the conflict was
   * stored, the answer is conflict-again) becomes our base for this server, and local changes of the
   * resource still queued for this server are dropped for it. The caller writes `remote` to the local
   * record and queues it (other servers receive it; this one skips it, holding that content already).
   */
  resolveConflict(id: number, choice: ConflictChoice, by: string, fields: Readonly<Record<string, FieldSide>> = {}): Promise<ConflictResolution> {
    const found = this.state.conflict(id);
    if (!found) return Promise.reject(new NwError('not-found', `No sync conflict ${id}.`));
    const sync = this.syncs.find((s) => s.server.name === found.server);
    if (!sync) return Promise.reject(new NwError('not-found', `Sync conflict ${id} belongs to server "${found.server}", which is no longer configured.`));
    return this.queue(found.server).run(async () => {
      const conflict = this.state.conflict(id)!;
      if (conflict.status !== 'open') throw new NwError('conflict', `Sync conflict ${id} is already resolved (${conflict.status}).`);
      if (choice === 'take-theirs') return this.takeTheirs(sync, conflict, by);
      if (choice === 'merge') return this.merge(sync, conflict, by, fields);
      return this.keepMine(sync, conflict, by);
    });
  }

  /**
   * merge: per top-level element, mine or theirs (merge.ts), from the copies the conflict shows. The
   * merged copy is validated, then written like keep-mine (If-Match of the server's version the person
   * saw: a further remote edit is a conflict again, never overwritten); local changes of the resource
   * still queued for this server are superseded by it (in the same commit), as with take-theirs. The caller writes `merged`
   * to the local record and queues it (other servers receive it; this one skips it by content hash).
   * Stored as `kept-mine` (the store knows two outcomes: ours written, or theirs adopted).
   */
  private async merge(sync: ServerSync, conflict: ConflictRecord, by: string, fields: Readonly<Record<string, FieldSide>>): Promise<ConflictResolution> {
    const mine = conflict.localJson ? (JSON.parse(conflict.localJson) as Resource) : null;
    const theirs = conflict.remoteJson ? (JSON.parse(conflict.remoteJson) as Resource) : null;
    if (!mine || !theirs) throw new NwError('bad-request', `Sync conflict ${conflict.id}: one side deleted ${conflict.resourceType}/${conflict.resourceId}; there is nothing to merge: keep mine or take theirs.`);
    const merged = sendable(mergeByField(sendable(mine), sendable(theirs), fields));
    this.validator.assertValid(merged);
    const outcome = await this.keepMine(sync, conflict, by, merged);
    if (outcome.status !== 'resolved') return outcome;
    return { ...outcome, choice: 'merge', merged };
  }

  /** The server's copy as it is now: the resource (null when deleted there) and its version. */
  private async currentRemote(sync: ServerSync, conflict: ConflictRecord): Promise<{ resource: Resource | null; versionId: string | null; status: number; outcome: string }> {
    const [answer] = await sync.exchange([{ method: 'GET', url: `${conflict.resourceType}/${conflict.resourceId}` }], 'batch');
    const resource = answer && answer.status >= 200 && answer.status < 300 ? answer.resource : null;
    return { resource, versionId: resource ? (answer!.versionId ?? resource.meta?.versionId ?? null) : null, status: answer?.status ?? 0, outcome: outcomeText(answer?.outcome) };
  }

  /** Closes the conflict with the server's version (or its deletion) as our new base for that server. */
  private closeConflict(conflict: ConflictRecord, status: 'kept-mine' | 'took-theirs', by: string, base: { versionId: string; contentSha256: string } | null, extra: () => void = () => undefined): ConflictRecord {
    this.state.transaction(() => {
      if (base) this.state.confirmVersion(conflict.server, conflict.resourceType, conflict.resourceId, base.versionId, base.contentSha256);
      else this.state.forgetVersion(conflict.server, conflict.resourceType, conflict.resourceId);
      extra();
      this.state.closeConflict(conflict.id, status, by);
    });
    return this.state.conflict(conflict.id)!;
  }

  private async takeTheirs(sync: ServerSync, conflict: ConflictRecord, by: string): Promise<ConflictResolution> {
    const stored = conflict.remoteJson ? (JSON.parse(conflict.remoteJson) as Resource) : null;
    const local = conflict.localJson ? (JSON.parse(conflict.localJson) as Resource) : null;
    // "Theirs" must be what the server holds NOW: adopting an older copy as our base would hide
    // whatever happened since (another edit, or our own keep-mine whose answer was lost).
    const now = await this.currentRemote(sync, conflict);
    if (!now.resource && now.status !== 404 && now.status !== 410) {
      return { status: 'refused', conflict, message: `reading the server's copy answered HTTP ${now.status}: ${now.outcome || 'no OperationOutcome given'}` };
    }
    // The server moved on to exactly our copy (a keep-mine whose answer was lost): theirs is ours now.
    const nowOurs = now.resource && local ? sameContent(now.resource, local) : false;
    const unchanged =
      nowOurs ||
      (now.resource && stored ? (now.versionId && conflict.remoteVersionId ? now.versionId === conflict.remoteVersionId : sameContent(now.resource, stored)) : !now.resource && !stored);
    if (!unchanged) {
      this.state.updateConflictRemote(conflict.id, now.versionId, now.resource ? JSON.stringify(now.resource) : null, conflict.httpStatus);
      return { status: 'conflict-again', conflict: this.state.conflict(conflict.id)! };
    }
    const base = now.resource && now.versionId ? { versionId: now.versionId, contentSha256: remoteContentSha256(now.resource) } : null;
    // Local changes queued before this choice and not yet folded into the conflict are superseded too.
    const closed = this.closeConflict(conflict, 'took-theirs', by, base, () => this.state.supersedePending(conflict.server, conflict.resourceType, conflict.resourceId));
    return { status: 'resolved', choice: 'take-theirs', conflict: closed, remote: now.resource };
  }

  /** `written`: what to write instead of the stored local copy (a merge). */
  private async keepMine(sync: ServerSync, conflict: ConflictRecord, by: string, written?: Resource): Promise<ConflictResolution> {
    const key = `${conflict.resourceType}/${conflict.resourceId}`;
    const stored = conflict.remoteJson ? (JSON.parse(conflict.remoteJson) as Resource) : null;
    const local = written ?? (conflict.localJson ? sendable(JSON.parse(conflict.localJson) as Resource) : null);
    // A merge supersedes the local changes still queued for this server, in the commit that closes the conflict.
    const supersede = written ? () => this.state.supersedePending(conflict.server, conflict.resourceType, conflict.resourceId) : undefined;
    const resolved = (base: { versionId: string; contentSha256: string } | null): ConflictResolution => ({ status: 'resolved', choice: 'keep-mine', conflict: this.closeConflict(conflict, 'kept-mine', by, base, supersede), remote: null });
    const ours = (versionId: string | null) => (local ? { versionId: versionId ?? '', contentSha256: sha256(canonicalJson(local)) } : null);
    // Both sides deleted it, or the server's copy is already exactly ours: nothing to write.
    if (!local && !stored) return resolved(null);
    if (local && stored && conflict.remoteVersionId && sameContent(stored, local)) return resolved(ours(conflict.remoteVersionId));

    // Recorded before sending: if the answer is lost, the next try recognises this copy as ours.
    const previousAttempt = conflict.attemptedJson ? (JSON.parse(conflict.attemptedJson) as Resource) : null;
    if (local) this.state.setConflictAttempt(conflict.id, JSON.stringify(local));
    let ifMatch = conflict.remoteVersionId ?? undefined;
    for (let attempt = 0; ; attempt++) {
      const [result] = await sync.exchange([local ? { method: 'PUT', url: key, resource: local, ...(ifMatch ? { ifMatch } : {}) } : { method: 'DELETE', url: key, ...(ifMatch ? { ifMatch } : {}) }], 'batch');
      if (result!.status >= 200 && result!.status < 300) return resolved(ours(result!.versionId));
      if (result!.status !== 412 && result!.status !== 409 && result!.status !== 404) {
        return { status: 'refused', conflict, message: `HTTP ${result!.status}: ${outcomeText(result!.outcome) || 'no OperationOutcome given'}` };
      }
      const now = await this.currentRemote(sync, conflict);
      // Our own keep-mine whose answer was lost: the server already holds exactly ours.
      if ((now.resource && local && sameContent(now.resource, local)) || (!now.resource && !local)) return resolved(ours(now.versionId));
      // An earlier keep-mine of an older local copy landed (its answer was lost): it is ours too, so
      // the person's choice stands; write the newest copy over it, once.
      if (attempt === 0 && now.resource && now.versionId && previousAttempt && sameContent(now.resource, previousAttempt)) {
        ifMatch = now.versionId;
        continue;
      }
      this.state.updateConflictRemote(conflict.id, now.versionId, now.resource ? JSON.stringify(now.resource) : null, result!.status);
      return { status: 'conflict-again', conflict: this.state.conflict(conflict.id)! };
    }
  }

  /** A dead letter a person gave up on: closed, the change is not sent to that server. */
  discardDeadLetter(id: number, by: string): void {
    const letter = this.state.deadLetter(id);
    if (!letter) throw new NwError('not-found', `No dead letter ${id}.`);
    if (letter.status !== 'open') throw new NwError('conflict', `Dead letter ${id} is already ${letter.status}.`);
    this.state.transaction(() => this.state.closeDeadLetter(id, 'discarded', by));
  }

  /**
   * Queues the dead letter's change again (as a new outbox row, e.g. after the server's problem was
   * fixed). Servers that already hold that exact content skip it (content hash), so only the ones that
   * refused it receive it again.
   */
  requeueDeadLetter(id: number, by: string): void {
    const letter = this.state.deadLetter(id);
    if (!letter) throw new NwError('not-found', `No dead letter ${id}.`);
    if (letter.status !== 'open') throw new NwError('conflict', `Dead letter ${id} is already ${letter.status}.`);
    if (letter.localOperation === 'put' && !letter.resourceJson) throw new NwError('bad-request', `Dead letter ${id} holds no resource to send.`);
    const resource = letter.resourceJson ? (JSON.parse(letter.resourceJson) as Resource & { id: string }) : { resourceType: letter.resourceType, id: letter.resourceId };
    this.state.transaction(() => {
      new Outbox(this.options.db, this.now).enqueue(letter.localOperation === 'delete' ? 'delete' : 'update', resource);
      this.state.closeDeadLetter(id, 'requeued', by);
    });
  }

  private queue(name: string): SerialQueue {
    return this.queues.get(name)!;
  }
}

function skippedPull(server: string, error: string | null): ServerPullResult {
  return { server, state: 'skipped', types: [], applied: 0, conflicts: 0, requests: 0, error, messages: [] };
}
