/**
 * Incremental pull from one server (issue 10 item 4): for each pull type, the resources the server
 * changed since the cursor, by `Type?_lastUpdated=ge<cursor - overlap>&_sort=_lastUpdated&_count=N`,
 * merged into the local store. The rules (README "Pull"):
 *
 * - Paging is by keyset on meta.lastUpdated, not by the server's `next` links: offset-based links (as
 *   Medplum's) skip a resource that is updated while the pages are read, and MemoryRepository gives no
 *   links at all. Each next page asks `ge` the last page's newest instant and skips the (id, version)
 *   pairs already seen at that instant, so resources sharing one lastUpdated across a page boundary are
 *   neither lost nor applied twice. A page whose every entry shares one instant is asked again with a
 *   doubled `_count` (up to 1000), so a crowded millisecond cannot stall the pull.
 * - The cursor is the server's newest lastUpdated applied (the server's clock; ours never enters), stored
 *   in the transaction that applied the page. The next pull starts `overlapMs` earlier, so a write the
 *   server committed late with an earlier timestamp is still seen; what is re-read is recognised by its
 *   version (the one fhir_sync_versions holds for this server) and skipped.
 * - Merge, per resource: the version this server last confirmed to us → nothing. A local change of the
 *   resource not yet finished for this server (an unsent outbox row), or an open conflict → never
 *   overwritten: a conflict with base (our confirmed version, read back), local and remote (or the open
 *   conflict shows the newer remote). Content the workstation already holds (e.g. our own write, or the
 *   same change pulled from another server) → only the version is recorded. Otherwise the copy replaces
 *   the local one and the version is recorded as this server's confirmed version, so a later local edit
 *   goes out with If-Match of it.
 * - Nothing pulled is ever queued in the outbox: no change echoes back to any server.
 */
import type { Bundle, Patient as FhirPatient, Resource } from '@medplum/fhirtypes';
import type { Db } from '../../store/database.js';
import { StatementOwner } from '../../store/statements.js';
import { demographicsFromFhir } from '../patient-from-fhir.js';
import { changesOfRow, UnsendableRow, type OutboxRow, type ResourceChange } from './changes.js';
import { contentSha256, type PulledResources, type PullType } from './pull-store.js';
import { TransportFailure, type FhirServerClient } from './server-client.js';
import { routes, type PullSettings, type SyncServer } from './settings.js';
import type { NewConflict, SyncState } from './sync-state.js';

/** Medplum's server caps `_count` at 1000; most servers cap somewhere near. */
const MAX_PAGE_SIZE = 1000;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

/** Where pulled Patients go: the local patient records (patients/patients-repo.ts adoptPulled). */
export interface PulledPatientTarget {
  adoptPulled(
    id: string,
    fields: { mrn: string; givenName: string; familyName: string; birthDate: string; sex: 'female' | 'male' | 'other' | 'unknown' },
    labels: { restricted: boolean; synthetic: boolean },
  ): 'created' | 'updated' | 'unchanged';
}

export interface PullTypeResult {
  resourceType: PullType;
  /** Search requests made. */
  requests: number;
  /** Entries the server returned (re-read ones included). */
  received: number;
  /** Copies written locally. */
  applied: number;
  /** Content already held: only the server's version recorded. */
  alreadyHeld: number;
  /** The version this server last confirmed to us (our own write, or read before): skipped. */
  known: number;
  /** New conflicts (an unsent local change) and open conflicts shown a newer remote copy. */
  conflicts: number;
  /** Copies that cannot become a local record (e.g. a Patient without our MRN); the reasons are in `messages`. */
  refused: number;
  error: string | null;
}

export interface ServerPullResult {
  server: string;
  /** done: every type pulled; partial: some types failed; failed: the server could not be pulled; skipped: not asked this pass. */
  state: 'done' | 'partial' | 'failed' | 'skipped';
  types: PullTypeResult[];
  applied: number;
  conflicts: number;
  requests: number;
  error: string | null;
  messages: string[];
}

interface PulledEntry {
  resource: Resource & { id: string };
  key: string;
  versionId: string;
  lastUpdatedMs: number;
  /** `id@version`: what a page boundary dedupes by. */
  seenKey: string;
}

/** A server answer the pull cannot page on safely (unsorted, filter ignored, entries without meta). */
class PullRefused extends Error {}

/** The pull's own SQL: cursors, and the unsent local change of one resource. */
export class PullState extends StatementOwner {
  cursor(server: string, type: string): number | null {
    const row = this.sql('SELECT last_updated FROM fhir_pull_cursors WHERE server = ? AND resource_type = ?').get(server, type) as { last_updated: string | null } | undefined;
    return row?.last_updated ? Date.parse(row.last_updated) : null;
  }

  /** Moves the cursor forward only (a re-read page never moves it back). */
  advance(server: string, type: string, lastUpdatedMs: number): void {
    const iso = new Date(lastUpdatedMs).toISOString();
    this.sql(
      `INSERT INTO fhir_pull_cursors (server, resource_type, last_updated) VALUES (?, ?, ?)
       ON CONFLICT (server, resource_type) DO UPDATE SET last_updated = excluded.last_updated
       WHERE fhir_pull_cursors.last_updated IS NULL OR fhir_pull_cursors.last_updated < excluded.last_updated`,
    ).run(server, type, iso);
  }

  recordOutcome(server: string, type: string, error: string | null): void {
    const at = this.now().toISOString();
    this.sql(
      `INSERT INTO fhir_pull_cursors (server, resource_type, last_success_at, last_error, last_error_at) VALUES (@server, @type, @success, @error, @errorAt)
       ON CONFLICT (server, resource_type) DO UPDATE SET last_success_at = coalesce(@success, last_success_at), last_error = @error, last_error_at = coalesce(@errorAt, last_error_at)`,
    ).run({ server, type, success: error ? null : at, error, errorAt: error ? at : null });
  }

  status(server: string): { resourceType: string; lastUpdated: string | null; lastSuccessAt: string | null; lastError: string | null; lastErrorAt: string | null }[] {
    const rows = this.sql('SELECT resource_type, last_updated, last_success_at, last_error, last_error_at FROM fhir_pull_cursors WHERE server = ? ORDER BY resource_type').all(server) as {
      resource_type: string;
      last_updated: string | null;
      last_success_at: string | null;
      last_error: string | null;
      last_error_at: string | null;
    }[];
    return rows.map((r) => ({ resourceType: r.resource_type, lastUpdated: r.last_updated, lastSuccessAt: r.last_success_at, lastError: r.last_error, lastErrorAt: r.last_error_at }));
  }

  /** The newest local change of the resource that this server has not finished (not sent, not decided), or null. */
  unsentChange(server: string, type: string, id: string): ResourceChange | null {
    const row = this.sql(
      `SELECT o.id, o.resource_type, o.resource_id, o.operation, o.resource_json, o.fhir_valid FROM outbox o
       WHERE o.id > coalesce((SELECT cursor FROM fhir_sync_servers WHERE name = @server), 0) AND o.resource_type = @type AND o.resource_id = @id
         AND NOT EXISTS (SELECT 1 FROM fhir_sync_done d WHERE d.server = @server AND d.outbox_id = o.id)
         AND NOT EXISTS (SELECT 1 FROM fhir_sync_done_changes c WHERE c.server = @server AND c.outbox_id = o.id AND c.resource_type = o.resource_type AND c.resource_id = o.resource_id)
       ORDER BY o.id DESC LIMIT 1`,
    ).get({ server, type, id }) as OutboxRow | undefined;
    if (!row) return null;
    try {
      return changesOfRow(row).filter((c) => c.resourceType === type && c.id === id).at(-1) ?? null;
    } catch (error) {
      // A row that can never be sent (it becomes a dead letter) still holds a local change: not overwritten.
      if (error instanceof UnsendableRow) return { outboxId: row.id, resourceType: type, id, operation: 'put', resource: null, contentSha256: '' };
      throw error;
    }
  }
}

export interface ServerPullDeps {
  db: Db;
  state: SyncState;
  pullState: PullState;
  store: PulledResources;
  client: FhirServerClient;
  /** Absent: Patients are not pulled (the composition root hands the patients domain in). */
  patients: PulledPatientTarget | null;
  log: (message: string) => void;
}

function labelled(resource: Resource, system: string, codes: readonly string[], where: 'security' | 'tag'): boolean {
  return (resource.meta?.[where] ?? []).some((c) => c.system === system && codes.includes(c.code ?? ''));
}

export class ServerPull {
  constructor(
    readonly server: SyncServer,
    readonly settings: PullSettings,
    private readonly deps: ServerPullDeps,
  ) {}

  /** The types pulled: the settings' list, without Patient when no patient target is wired. */
  get types(): PullType[] {
    return this.settings.resourceTypes.filter((t) => t !== 'Patient' || this.deps.patients !== null);
  }

  async pull(): Promise<ServerPullResult> {
    const result: ServerPullResult = { server: this.server.name, state: 'done', types: [], applied: 0, conflicts: 0, requests: 0, error: null, messages: [] };
    for (const type of this.types) {
      const typeResult: PullTypeResult = { resourceType: type, requests: 0, received: 0, applied: 0, alreadyHeld: 0, known: 0, conflicts: 0, refused: 0, error: null };
      result.types.push(typeResult);
      try {
        await this.pullType(type, typeResult, result.messages);
        this.deps.pullState.recordOutcome(this.server.name, type, null);
      } catch (error) {
        const message = `${type}: ${(error as Error).message}`;
        typeResult.error = message;
        this.deps.pullState.recordOutcome(this.server.name, type, message);
        this.deps.log(`FHIR pull from ${this.server.name}: ${message}`);
        // The link or the credential failed: the other types would fail the same way.
        if (error instanceof TransportFailure && (error.kind === 'unreachable' || error.kind === 'timeout' || error.kind === 'auth')) {
          result.state = 'failed';
          result.error = message;
          break;
        }
        result.state = 'partial';
        result.error ??= message;
      } finally {
        result.applied += typeResult.applied;
        result.conflicts += typeResult.conflicts;
        result.requests += typeResult.requests;
      }
    }
    return result;
  }

  private async pullType(type: PullType, tally: PullTypeResult, messages: string[]): Promise<void> {
    const name = this.server.name;
    const cursor = this.deps.pullState.cursor(name, type);
    let fromMs = cursor === null ? null : cursor - this.settings.overlapMs;
    let seenAtFrom = new Set<string>();
    let count = Math.min(this.settings.pageSize, MAX_PAGE_SIZE);
    for (;;) {
      const params: Record<string, string> = { _sort: '_lastUpdated', _count: String(count), ...(fromMs !== null ? { _lastUpdated: `ge${new Date(fromMs).toISOString()}` } : {}) };
      tally.requests += 1;
      const bundle = await this.deps.client.search(type, params);
      const entries = this.entriesOf(bundle, type, fromMs);
      tally.received += entries.length;
      const fresh = entries.filter((e) => !(e.lastUpdatedMs === fromMs && seenAtFrom.has(e.seenKey)));
      if (fresh.length > 0) await this.merge(type, fresh, tally, messages);
      if (entries.length < count) return;
      const lastMs = entries.at(-1)!.lastUpdatedMs;
      if (lastMs === fromMs) {
        // Every entry of a full page shares the instant: ask again for more of it at once.
        for (const e of entries) seenAtFrom.add(e.seenKey);
        if (count >= MAX_PAGE_SIZE) throw new PullRefused(`more than ${MAX_PAGE_SIZE} resources share lastUpdated ${new Date(lastMs).toISOString()}: they cannot be paged by _lastUpdated`);
        count = Math.min(count * 2, MAX_PAGE_SIZE);
        continue;
      }
      seenAtFrom = new Set(entries.filter((e) => e.lastUpdatedMs === lastMs).map((e) => e.seenKey));
      fromMs = lastMs;
      count = Math.min(this.settings.pageSize, MAX_PAGE_SIZE);
    }
  }

  /** The page's resources, checked: the right type, an id, a version and a lastUpdated each, sorted, inside the filter. */
  private entriesOf(bundle: Bundle, type: PullType, fromMs: number | null): PulledEntry[] {
    const entries: PulledEntry[] = [];
    for (const entry of bundle.entry ?? []) {
      if (entry.search?.mode && entry.search.mode !== 'match') continue;
      const resource = entry.resource;
      if (!resource) continue;
      if (resource.resourceType !== type) throw new PullRefused(`the search for ${type} returned a ${resource.resourceType}`);
      const id = resource.id;
      const versionId = resource.meta?.versionId;
      const lastUpdatedMs = Date.parse(resource.meta?.lastUpdated ?? '');
      if (!id || !FHIR_ID.test(id) || !versionId || !Number.isFinite(lastUpdatedMs)) {
        throw new PullRefused(`${type}/${id ?? '?'} came without an id, meta.versionId or meta.lastUpdated: the pull cannot track it`);
      }
      const previous = entries.at(-1);
      if (previous && lastUpdatedMs < previous.lastUpdatedMs) throw new PullRefused(`the server ignored _sort=_lastUpdated (${type}/${id} after ${previous.key}): pages cannot be followed safely`);
      if (fromMs !== null && lastUpdatedMs < fromMs) throw new PullRefused(`the server ignored the _lastUpdated filter (${type}/${id} is older than ${new Date(fromMs).toISOString()})`);
      entries.push({ resource: resource as Resource & { id: string }, key: `${type}/${id}`, versionId, lastUpdatedMs, seenKey: `${id}@${versionId}` });
    }
    return entries;
  }

  /** Applies one page: decisions and writes and the cursor in one transaction (bases of new conflicts read first). */
  private async merge(type: PullType, entries: PulledEntry[], tally: PullTypeResult, messages: string[]): Promise<void> {
    const { state, pullState } = this.deps;
    const name = this.server.name;
    // Conflicts show the base (our confirmed version as the server kept it): read before the transaction.
    const bases = new Map<string, string>();
    for (const e of entries) {
      const known = state.confirmedVersion(name, type, e.resource.id);
      if (known?.versionId === e.versionId || !routes(this.server, type)) continue;
      const unsent = pullState.unsentChange(name, type, e.resource.id);
      if (!unsent || unsent.contentSha256 === contentSha256(e.resource) || !known) continue;
      try {
        const answer = await this.deps.client.single({ method: 'GET', url: `${type}/${e.resource.id}/_history/${known.versionId}` });
        if (answer.resource) bases.set(e.key, JSON.stringify(answer.resource));
      } catch {
        // The conflict is stored without its base rather than not at all.
      }
    }
    state.transaction(() => {
      for (const e of entries) this.mergeOne(type, e, bases, tally, messages);
      pullState.advance(name, type, entries.at(-1)!.lastUpdatedMs);
    });
  }

  private mergeOne(type: PullType, e: PulledEntry, bases: ReadonlyMap<string, string>, tally: PullTypeResult, messages: string[]): void {
    const { state, pullState, store } = this.deps;
    const name = this.server.name;
    const id = e.resource.id;
    const known = state.confirmedVersion(name, type, id);
    if (known?.versionId === e.versionId) {
      tally.known += 1;
      return;
    }
    const remoteSha = contentSha256(e.resource);
    const openConflict = state.openConflictId(name, type, id);
    if (openConflict !== null) {
      // A person decides; they see the server's newest copy.
      const conflict = state.conflict(openConflict)!;
      if (conflict.remoteVersionId !== e.versionId) {
        state.updateConflictRemote(openConflict, e.versionId, JSON.stringify(e.resource), conflict.httpStatus);
        tally.conflicts += 1;
      } else tally.known += 1;
      return;
    }
    // Only changes this server receives can be unsent to it.
    const unsent = routes(this.server, type) ? pullState.unsentChange(name, type, id) : null;
    if (unsent) {
      if (unsent.contentSha256 === remoteSha) {
        // The server already holds exactly our queued change (an answer lost, or the same edit elsewhere):
        // its version becomes our base, and the push then finds nothing to send.
        state.confirmVersion(name, type, id, e.versionId, remoteSha);
        tally.alreadyHeld += 1;
        return;
      }
      const conflict: NewConflict = {
        change: unsent,
        // The server answered (200) with a version newer than the one our unsent change is based on.
        httpStatus: 200,
        baseVersionId: known?.versionId ?? null,
        baseJson: bases.get(e.key) ?? null,
        remoteVersionId: e.versionId,
        remoteJson: JSON.stringify(e.resource),
      };
      state.recordBatch(name, { confirmed: [], deleted: [], conflicts: [conflict], folded: [], deadLetters: [], finishedRowIds: [], finishedChanges: [], resolvedRowIds: [] });
      tally.conflicts += 1;
      messages.push(`${e.key}: the server's version ${e.versionId} meets a local change not yet sent (outbox row ${unsent.outboxId}): stored as a conflict`);
      return;
    }
    if (type === 'Patient') {
      // Compared with the patient record itself, not with the last pulled copy: a local edit of the
      // record (patients.update) leaves that copy behind, so "same as pulled before" can be new here.
      const outcome = this.adoptPatient(e.resource as FhirPatient & { id: string });
      if (!outcome.ok) {
        tally.refused += 1;
        messages.push(`${e.key}: not taken as a local patient record: ${outcome.reason}`);
        return;
      }
      store.writePulled(e.resource, name, e.versionId, new Date(e.lastUpdatedMs).toISOString());
      state.confirmVersion(name, type, id, e.versionId, remoteSha);
      if (outcome.change === 'unchanged') tally.alreadyHeld += 1;
      else tally.applied += 1;
      return;
    }
    if (store.heldContentSha256(type, id) === remoteSha) {
      state.confirmVersion(name, type, id, e.versionId, remoteSha);
      tally.alreadyHeld += 1;
      return;
    }
    store.writePulled(e.resource, name, e.versionId, new Date(e.lastUpdatedMs).toISOString());
    state.confirmVersion(name, type, id, e.versionId, remoteSha);
    tally.applied += 1;
  }

  /** Merges a pulled Patient into the patient records; the reason when it cannot be one. */
  private adoptPatient(patient: FhirPatient & { id: string }): { ok: true; change: 'created' | 'updated' | 'unchanged' } | { ok: false; reason: string } {
    const demographics = demographicsFromFhir(patient);
    if (!demographics.ok) return { ok: false, reason: `it lacks ${demographics.missing.join(', ')}` };
    try {
      const change = this.deps.patients!.adoptPulled(patient.id, demographics.fields, {
        restricted: labelled(patient, CONFIDENTIALITY, ['R', 'V'], 'security'),
        synthetic: labelled(patient, ACT_REASON, ['HTEST'], 'tag'),
      });
      return { ok: true, change };
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
  }
}

