/**
 * Draining the outbox to ONE server: claim a batch (sync-state.ts), send it, record what the server
 * answered, repeat until nothing is left or the server fails. What each answer means:
 *
 * - 2xx: confirmed; the server's version is kept as the If-Match of the next update of that resource.
 * - 412 (409 from older servers; 404 to a PUT with If-Match: deleted there): the server's copy moved on.
 *   Its current copy and the base we last confirmed are read and stored as a conflict with ours; later
 *   local changes of that resource wait in the conflict (fold) until a person resolves it. If the
 *   server's copy turns out to be exactly ours (our own earlier write whose answer was lost), it is
 *   adopted instead: no conflict.
 * - other 4xx of an entry: a dead letter with the server's OperationOutcome text.
 * - 429 / 5xx of an entry: tried again with backoff; after `maxEntryAttempts`, a dead letter.
 * - no usable answer for the whole Bundle (link down, timeout, 5xx, 429, HTML, a short Bundle): nothing
 *   is taken as done; the server is retried after Retry-After or an exponential backoff with jitter; if
 *   the Bundle may have been applied, its rows stay "in doubt" and the next attempt first READS each of
 *   their resources and adopts what is already there, so a resend never writes a second version.
 *
 * Within a batch the changes of one resource are coalesced to the newest (a Bundle may hold a resource
 * once) and ordered so referenced resources come first (changes.ts referenceOrder).
 */
import type { Resource } from '@medplum/fhirtypes';
import type { FhirValidator } from '../validation.js';
import { changesOfRow, keyOf, referenceOrder, referencesOf, sameContent, sha256, canonicalJson, sendable, UnsendableRow, type OutboxRow, type ResourceChange } from './changes.js';
import { backoffDelayMs } from './backoff.js';
import { outcomeText, TransportFailure, type EntryRequest, type EntryResult, type FhirServerClient } from './server-client.js';
import { routes, type SyncPolicy, type SyncServer } from './settings.js';
import type { BatchOutcome, ConfirmedVersion, NewDeadLetter, SyncState } from './sync-state.js';

export interface ServerPassResult {
  server: string;
  /** How the pass ended: everything finished, waiting for its retry time, retrying entries later, or failed. */
  state: 'drained' | 'waiting' | 'retrying' | 'failed';
  /** Changes the server confirmed in this pass (PUT/DELETE answered 2xx). */
  sent: number;
  /** Changes found already on the server (an earlier attempt's answer was lost) and adopted without resending. */
  adopted: number;
  /** Changes not sent because the server already holds exactly that content from us. */
  unchanged: number;
  conflicts: number;
  deadLetters: number;
  /** HTTP requests made (Bundles count once). */
  requests: number;
  rowsFinished: number;
  error: string | null;
  nextAttemptAt: string | null;
}

export interface ServerSyncDeps {
  state: SyncState;
  client: FhirServerClient;
  validator: FhirValidator;
  policy: SyncPolicy;
  now: () => Date;
  random: () => number;
  log: (message: string) => void;
}

interface Claim {
  rows: OutboxRow[];
  changes: ResourceChange[];
  /** Rows an earlier attempt may have delivered: their resources are read before anything is written. */
  recovering: Set<number>;
  /** Rows this claim put in doubt (not in doubt before): out of doubt again if the batch provably never left. */
  newlyInDoubt: number[];
  /** The scan stopped at a row that must wait for a Bundle still on the wire. */
  blocked: boolean;
}

/** What Bundles still on the wire hold: a new batch leaves their rows alone and waits for their resources. */
interface InFlight {
  rows: Set<number>;
  keys: Set<string>;
}

/** All changes of one resource in a batch: the newest is sent, the older ones help recognise our own writes. */
interface ResourceGroup {
  key: string;
  latest: ResourceChange;
  all: ResourceChange[];
  known: ConfirmedVersion | null;
}

type Tally = Pick<ServerPassResult, 'sent' | 'adopted' | 'unchanged' | 'conflicts' | 'deadLetters' | 'requests' | 'rowsFinished'>;

function emptyOutcome(): BatchOutcome {
  return { confirmed: [], deleted: [], conflicts: [], folded: [], deadLetters: [], finishedRowIds: [], finishedChanges: [], resolvedRowIds: [] };
}

const MAX_RETRY_AFTER_MS = 24 * 3_600_000;

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

export class ServerSync {
  /** Entry-level retries (5xx/429 of one entry while the Bundle succeeded), by resource; kept in memory: a restart starts the count again. */
  private readonly entryAttempts = new Map<string, number>();

  constructor(
    readonly server: SyncServer,
    private readonly deps: ServerSyncDeps,
  ) {}

  get client(): FhirServerClient {
    return this.deps.client;
  }

  /** Drains until nothing is left or the server fails. `force` ignores the server's retry time. */
  async pass(options: { force?: boolean } = {}): Promise<ServerPassResult> {
    const { state } = this.deps;
    const name = this.server.name;
    state.ensureServer(name);
    const tally: Tally = { sent: 0, adopted: 0, unchanged: 0, conflicts: 0, deadLetters: 0, requests: 0, rowsFinished: 0 };
    const result = (end: ServerPassResult['state'], error: string | null = null): ServerPassResult => ({ server: name, state: end, ...tally, error, nextAttemptAt: state.server(name).nextAttemptAt });
    const due = state.server(name).nextAttemptAt;
    if (!options.force && due && Date.parse(due) > this.deps.now().getTime()) return result('waiting', state.server(name).lastError);

    // Up to `pipelineDepth` Bundles on the wire at once. A new batch never holds a resource (or a
    // reference to one) that a Bundle on the wire holds, so their order on the server cannot matter and
    // each resource's If-Match chain stays one request at a time.
    const depth = Math.max(1, this.server.pipelineDepth);
    const wire: { claim: Claim; answer: Promise<{ sent: { outcome: BatchOutcome; retry: string | null } } | { failed: unknown }> }[] = [];
    const onTheWire = (): InFlight => {
      const inFlight: InFlight = { rows: new Set(), keys: new Set() };
      for (const w of wire) {
        for (const row of w.claim.rows) inFlight.rows.add(row.id);
        for (const change of w.claim.changes) inFlight.keys.add(keyOf(change));
      }
      return inFlight;
    };
    let failure: TransportFailure | null = null;
    let retry: string | null = null;
    let exhausted = false;
    // A claim made in the same transaction (one commit) as the outcome recorded just before it.
    let prefetched: Claim | null | undefined;
    const canSend = () => !failure && !retry && !exhausted && wire.length < depth;
    for (;;) {
      while (canSend()) {
        const claim = prefetched !== undefined ? prefetched : state.transaction(() => this.claim(tally, onTheWire()));
        prefetched = undefined;
        if (!claim) {
          exhausted = true;
          break;
        }
        if (claim.changes.length === 0) {
          if (claim.blocked) break; // wait for the Bundle on the wire
          continue; // rows finished without sending (not routed here, invalid): next rows
        }
        wire.push({ claim, answer: this.send(claim, tally).then((sent) => ({ sent }), (error: unknown) => ({ failed: error })) });
      }
      const head = wire.shift();
      if (!head) break;
      const answer = await head.answer;
      if ('failed' in answer) {
        if (!(answer.failed instanceof TransportFailure)) {
          await Promise.allSettled(wire.map((w) => w.answer));
          throw answer.failed;
        }
        // Rows that provably never left are out of doubt again; the others stay in doubt (read before resending).
        if (!answer.failed.details.mayHaveApplied) state.transaction(() => state.changeInDoubt(name, [], head.claim.newlyInDoubt));
        failure ??= answer.failed;
        continue;
      }
      const { outcome, retry: retryMessage } = answer.sent;
      retry ??= retryMessage;
      prefetched = state.transaction(() => {
        state.recordBatch(name, outcome);
        return canSend() ? this.claim(tally, onTheWire()) : undefined;
      });
      tally.rowsFinished += outcome.finishedRowIds.length;
    }

    if (failure) {
      const failures = state.server(name).consecutiveFailures + 1;
      const retryAfter = failure.details.retryAfterMs;
      // The server's Retry-After is honoured as given (bounded at a day against a nonsense value).
      const wait = retryAfter !== null && retryAfter !== undefined ? Math.min(retryAfter, MAX_RETRY_AFTER_MS) : backoffDelayMs(failures, this.deps.policy, this.deps.random);
      const next = new Date(this.deps.now().getTime() + wait);
      const message = `${this.server.name}: ${failure.message}`;
      state.recordFailure(name, message, next, true);
      this.deps.log(`FHIR sync: ${message}; next attempt in ${Math.round(wait / 1000)} s`);
      return result('failed', message);
    }
    if (retry) {
      const failures = state.server(name).consecutiveFailures + 1;
      const message = `${this.server.name}: ${retry}`;
      state.recordFailure(name, message, new Date(this.deps.now().getTime() + backoffDelayMs(failures, this.deps.policy, this.deps.random)), true);
      return result('retrying', message);
    }
    state.recordSuccess(name);
    return result('drained');
  }

  /**
   * Picks the next rows (at most maxBundleEntries changes for this server) and claims them; runs inside
   * the caller's transaction. Rows are read 16 at a time, so a batch of minute Bundles (7 resources
   * each) reads about the 15 rows it needs, not a fixed hundred.
   */
  private claim(tally: Tally, inFlight: InFlight): Claim | null {
    const { state, validator } = this.deps;
    const name = this.server.name;
    const max = this.server.maxBundleEntries;
    const server = state.server(name);
    const decided = state.decidedChanges(name, server.cursor);
    const taken: OutboxRow[] = [];
    const changes: ResourceChange[] = [];
    const finishedNow: number[] = [];
    const deadLetters: NewDeadLetter[] = [];
    let after = server.cursor;
    let scanned = 0;
    let full = false;
    let blocked = false;
    while (!full && scanned < Math.max(200, max * 4)) {
      // 16 rows a read: a batch of minute Bundles (7 resources each) needs 15; reading 64 made every claim
      // copy ~50 rows of JSON out of the store only to drop them (garbage for each Bundle).
      const rows = state.unfinishedRows(name, after, Math.min(16, max + 1));
      if (rows.length === 0) break;
      for (const row of rows) {
        after = row.id;
        scanned += 1;
        if (inFlight.rows.has(row.id)) continue;
        let rowChanges: ResourceChange[];
        try {
          rowChanges = changesOfRow(row);
        } catch (error) {
          if (!(error instanceof UnsendableRow)) throw error;
          deadLetters.push(this.rowDeadLetter(row, error.message));
          finishedNow.push(row.id);
          continue;
        }
        const routed = rowChanges.filter((c) => routes(this.server, c.resourceType) && !decided.has(`${c.outboxId}:${keyOf(c)}`));
        if (routed.length === 0) {
          finishedNow.push(row.id);
          continue;
        }
        // A resource on the wire, or a reference to one: this row and every later one wait (outbox order).
        if (inFlight.keys.size > 0 && routed.some((c) => inFlight.keys.has(keyOf(c)) || (c.resource !== null && [...referencesOf(c.resource)].some((ref) => inFlight.keys.has(ref))))) {
          blocked = true;
          full = true;
          break;
        }
        if (changes.length > 0 && changes.length + routed.length > max) {
          full = true;
          break;
        }
        // Rows checked at enqueue (ValidatingOutbox) are not checked again; the others once, here.
        if (row.operation !== 'delete' && row.fhir_valid !== 1) {
          const verdict = validator.validate(JSON.parse(row.resource_json));
          if (row.fhir_valid === null) state.setValidity(row.id, verdict.valid);
          if (!verdict.valid) {
            this.deps.log(`FHIR sync: outbox row ${row.id} is not sent to ${name}: ${verdict.reason}`);
            deadLetters.push(this.rowDeadLetter(row, `never sent: ${verdict.reason}`));
            finishedNow.push(row.id);
            continue;
          }
        }
        taken.push(row);
        changes.push(...routed);
        if (changes.length >= max) {
          full = true;
          break;
        }
      }
    }
    if (taken.length === 0 && finishedNow.length === 0) return blocked ? { rows: [], changes: [], recovering: new Set(), newlyInDoubt: [], blocked } : null;
    const doubted = new Set(server.inflight);
    const newlyInDoubt = taken.map((r) => r.id).filter((id) => !doubted.has(id));
    state.markClaimed(name, [...taken.map((r) => r.id), ...finishedNow], newlyInDoubt);
    for (const d of deadLetters) state.insertDeadLetter(name, d);
    state.finishRows(name, finishedNow);
    tally.deadLetters += deadLetters.length;
    tally.rowsFinished += finishedNow.length;
    return { rows: taken, changes, recovering: new Set(taken.filter((r) => doubted.has(r.id)).map((r) => r.id)), newlyInDoubt, blocked };
  }

  private rowDeadLetter(row: OutboxRow, message: string): NewDeadLetter {
    return {
      outboxId: row.id,
      resourceType: row.resource_type,
      resourceId: row.resource_id,
      operation: row.operation === 'delete' ? 'delete' : 'put',
      resourceJson: row.resource_json,
      httpStatus: null,
      message,
      outcomeJson: null,
    };
  }

  /** Sends one claimed batch and decides every change; throws TransportFailure when the server gave no usable answer. */
  private async send(claim: Claim, tally: Tally): Promise<{ outcome: BatchOutcome; retry: string | null }> {
    const { state } = this.deps;
    const name = this.server.name;
    const outcome = emptyOutcome();
    const finished = new Set<string>();
    const groups = new Map<string, ResourceGroup>();
    for (const change of claim.changes) {
      const key = keyOf(change);
      const group = groups.get(key);
      if (group) {
        group.latest = change;
        group.all.push(change);
      } else groups.set(key, { key, latest: change, all: [change], known: null });
    }

    // Resources with an open conflict: the newer local change joins the conflict, nothing is sent.
    const conflicted = state.openConflictKeys(name);
    for (const group of groups.values()) {
      if (conflicted.has(group.key)) {
        outcome.folded.push(group.latest);
        finished.add(group.key);
        continue;
      }
      group.known = state.confirmedVersion(name, group.latest.resourceType, group.latest.id);
      if (group.latest.operation === 'put' && group.known?.contentSha256 === group.latest.contentSha256) {
        finished.add(group.key);
        tally.unchanged += 1;
      }
    }

    let bundleType = this.server.bundleType;
    let recoverAll = false;
    let retry: string | null = null;
    for (let round = 0; round < 2; round++) {
      const open = [...groups.values()].filter((g) => !finished.has(g.key));
      if (open.length === 0) break;
      const recover = open.filter((g) => recoverAll || g.all.some((c) => claim.recovering.has(c.outboxId)));
      if (recover.length > 0) await this.recover(recover, outcome, finished, tally);
      const toSend = referenceOrder(open.filter((g) => !finished.has(g.key)).map((g) => g.latest)).map((c) => groups.get(keyOf(c))!);
      if (toSend.length === 0) break;
      const requests: EntryRequest[] = toSend.map((g) =>
        g.latest.operation === 'put'
          ? { method: 'PUT', url: g.key, resource: g.latest.resource!, ...(g.known?.versionId ? { ifMatch: g.known.versionId } : {}) }
          : { method: 'DELETE', url: g.key, ...(g.known?.versionId ? { ifMatch: g.known.versionId } : {}) },
      );
      let results: EntryResult[];
      try {
        results = await this.exchange(requests, bundleType, tally);
      } catch (error) {
        // A transaction the server refused as a whole: which entry was at fault is unknown, and a server
        // without rollback (Medplum's MemoryRepository) may have applied part of it. Read everything,
        // then send the rest as a batch, where each entry gets its own answer.
        if (error instanceof TransportFailure && bundleType === 'transaction' && error.kind === 'http' && error.status !== null && error.status >= 400 && error.status < 500 && error.status !== 429 && round === 0) {
          this.deps.log(`FHIR sync: ${name}: transaction refused (${error.message}); resending its entries as a batch`);
          bundleType = 'batch';
          recoverAll = true;
          continue;
        }
        throw error;
      }
      const suspects: { group: ResourceGroup; status: number }[] = [];
      const retried: string[] = [];
      results.forEach((r, i) => {
        const group = toSend[i]!;
        const change = group.latest;
        if (isSuccess(r.status)) {
          if (change.operation === 'put') outcome.confirmed.push({ resourceType: change.resourceType, id: change.id, versionId: r.versionId ?? '', contentSha256: change.contentSha256 });
          else outcome.deleted.push({ resourceType: change.resourceType, id: change.id });
          finished.add(group.key);
          tally.sent += 1;
        } else if (change.operation === 'delete' && (r.status === 404 || r.status === 410)) {
          outcome.deleted.push({ resourceType: change.resourceType, id: change.id });
          finished.add(group.key);
          tally.sent += 1;
        } else if (r.status === 412 || r.status === 409 || (r.status === 404 && requests[i]!.ifMatch)) {
          suspects.push({ group, status: r.status });
        } else if (r.status === 429 || r.status >= 500) {
          const attempts = (this.entryAttempts.get(group.key) ?? 0) + 1;
          this.entryAttempts.set(group.key, attempts);
          const text = outcomeText(r.outcome) || `HTTP ${r.status}`;
          if (attempts >= this.deps.policy.maxEntryAttempts) {
            outcome.deadLetters.push(this.changeDeadLetter(change, r, `failed ${attempts} times, last with HTTP ${r.status}: ${text}`));
            finished.add(group.key);
            tally.deadLetters += 1;
            this.entryAttempts.delete(group.key);
          } else retried.push(`${group.key}: HTTP ${r.status} ${text}`);
        } else {
          outcome.deadLetters.push(this.changeDeadLetter(change, r, `refused with HTTP ${r.status}: ${outcomeText(r.outcome) || 'no OperationOutcome given'}`));
          finished.add(group.key);
          tally.deadLetters += 1;
        }
      });
      if (suspects.length > 0) {
        try {
          await this.settleConflicts(suspects, outcome, finished, tally);
        } catch (error) {
          if (!(error instanceof TransportFailure)) throw error;
          // The batch's other answers still count; the suspects are tried again (and read again) later.
          retried.push(`could not read ${suspects.length} changed resource(s) to record the conflict: ${error.message}`);
        }
      }
      if (retried.length > 0) retry = `${retried.length} change(s) to be retried: ${retried.slice(0, 3).join('; ')}${retried.length > 3 ? ' …' : ''}`;
      break;
    }

    for (const key of finished) this.entryAttempts.delete(key);
    // claim.changes holds only this server's undecided changes: a row is finished when all of them are.
    const finishedIds = new Set(claim.rows.filter((row) => claim.changes.filter((c) => c.outboxId === row.id).every((c) => finished.has(keyOf(c)))).map((r) => r.id));
    outcome.finishedRowIds = [...finishedIds];
    outcome.finishedChanges = claim.changes
      .filter((c) => !finishedIds.has(c.outboxId) && finished.has(keyOf(c)))
      .map((c) => ({ outboxId: c.outboxId, resourceType: c.resourceType, id: c.id }));
    outcome.resolvedRowIds = [...finishedIds];
    return { outcome, retry };
  }

  /** Reads the resources of rows an earlier attempt may have delivered; adopts what is already ours. */
  private async recover(groups: ResourceGroup[], outcome: BatchOutcome, finished: Set<string>, tally: Tally): Promise<void> {
    const results = await this.exchange(
      groups.map((g) => ({ method: 'GET', url: g.key })),
      'batch',
      tally,
    );
    results.forEach((r, i) => {
      const group = groups[i]!;
      const change = group.latest;
      if ((r.status === 404 || r.status === 410) && change.operation === 'delete') {
        outcome.deleted.push({ resourceType: change.resourceType, id: change.id });
        finished.add(group.key);
        tally.adopted += 1;
        return;
      }
      if (!isSuccess(r.status) || !r.resource) return;
      if (change.operation === 'put' && sameContent(r.resource, change.resource!)) {
        outcome.confirmed.push({ resourceType: change.resourceType, id: change.id, versionId: r.versionId ?? '', contentSha256: change.contentSha256 });
        finished.add(group.key);
        tally.adopted += 1;
        return;
      }
      // An older change of this batch reached the server: that is the base the newest one builds on.
      const earlier = group.all.find((c) => c.operation === 'put' && c !== change && sameContent(r.resource!, c.resource!));
      if (earlier && r.versionId) group.known = { versionId: r.versionId, contentSha256: earlier.contentSha256 };
    });
  }

  /** For each change the server refused as out of date: our own write (adopt) or a real conflict (store it). */
  private async settleConflicts(suspects: { group: ResourceGroup; status: number }[], outcome: BatchOutcome, finished: Set<string>, tally: Tally): Promise<void> {
    const reads: EntryRequest[] = [];
    for (const { group } of suspects) {
      reads.push({ method: 'GET', url: group.key });
      if (group.known?.versionId) reads.push({ method: 'GET', url: `${group.key}/_history/${group.known.versionId}` });
    }
    const results = await this.exchange(reads, 'batch', tally);
    let at = 0;
    for (const { group, status } of suspects) {
      const current = results[at++]!;
      const base = group.known?.versionId ? results[at++]! : null;
      const change = group.latest;
      const remote: Resource | null = isSuccess(current.status) ? current.resource : null;
      if (!remote && !(current.status === 404 || current.status === 410)) {
        throw new TransportFailure('bad-response', `reading ${group.key} after HTTP ${status} answered HTTP ${current.status}`, { mayHaveApplied: false });
      }
      if (remote && change.operation === 'put' && sameContent(remote, change.resource!)) {
        outcome.confirmed.push({ resourceType: change.resourceType, id: change.id, versionId: current.versionId ?? remote.meta?.versionId ?? '', contentSha256: change.contentSha256 });
        finished.add(group.key);
        tally.adopted += 1;
        continue;
      }
      if (!remote && change.operation === 'delete') {
        outcome.deleted.push({ resourceType: change.resourceType, id: change.id });
        finished.add(group.key);
        tally.sent += 1;
        continue;
      }
      outcome.conflicts.push({
        change,
        httpStatus: status,
        baseVersionId: group.known?.versionId ?? null,
        baseJson: base && isSuccess(base.status) && base.resource ? JSON.stringify(base.resource) : null,
        remoteVersionId: remote ? (current.versionId ?? remote.meta?.versionId ?? null) : null,
        remoteJson: remote ? JSON.stringify(remote) : null,
      });
      finished.add(group.key);
      tally.conflicts += 1;
      this.deps.log(`FHIR sync: ${this.server.name}: conflict on ${group.key} (HTTP ${status}); stored for a person to resolve`);
    }
  }

  private changeDeadLetter(change: ResourceChange, result: EntryResult, message: string): NewDeadLetter {
    return {
      outboxId: change.outboxId,
      resourceType: change.resourceType,
      resourceId: change.id,
      operation: change.operation,
      resourceJson: change.resource ? JSON.stringify(change.resource) : null,
      httpStatus: result.status,
      message,
      outcomeJson: result.outcome ? JSON.stringify(result.outcome) : null,
    };
  }

  /** One group of requests: one Bundle, or (per-resource mode) one request each, in order. */
  async exchange(requests: readonly EntryRequest[], type: 'batch' | 'transaction', tally?: Tally): Promise<EntryResult[]> {
    if (this.server.requestMode === 'per-resource') {
      const results: EntryResult[] = [];
      for (const request of requests) {
        if (tally) tally.requests += 1;
        results.push(await this.deps.client.single(request));
      }
      return results;
    }
    if (tally) tally.requests += 1;
    return this.deps.client.bundle(type, requests);
  }
}

/** The hash stored for a server's copy we adopt as our base (take theirs). */
export function remoteContentSha256(remote: Resource): string {
  return sha256(canonicalJson(sendable(remote)));
}
