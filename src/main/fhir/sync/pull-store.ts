/**
 * The workstation's copies of the FHIR resources it pulls and has no table of its own for
 * (migration 12, table fhir_resources): Practitioner, PractitionerRole, Location, Appointment,
 * Schedule and Slot, read by the schedule (CRM) through the typed API below. Patients pulled are merged
 * into the patients table (pull.ts); their copy kept here only tells the pull which content the
 * workstation already holds and is not readable through this API (patients are read through the
 * patients domain, where restriction and break-glass apply).
 *
 * A local change of one of these resources goes through `saveLocal`, which writes the copy and queues
 * it in the outbox in the caller's transaction (data and outbox together). A pulled copy is written by
 * the pull only, and never queued: that is what keeps a change from echoing between servers.
 */
import type { Appointment, Location, Practitioner, PractitionerRole, Resource, Schedule, Slot } from '@medplum/fhirtypes';
import type { Outbox } from '../../store/outbox.js';
import { StatementOwner } from '../../store/statements.js';
import { canonicalJson, sendable, sha256 } from './changes.js';

/** The resource types the incremental pull asks every server for (issue 10 item 4), in this order. */
export const PULL_TYPES = ['Patient', 'Practitioner', 'PractitionerRole', 'Location', 'Appointment', 'Schedule', 'Slot'] as const;
export type PullType = (typeof PULL_TYPES)[number];
/** Search page size (`_count`); Medplum's server caps it at 1000. */
export const DEFAULT_PULL_PAGE_SIZE = 100;
/** How far before the cursor a pull starts again: a write committed late with an earlier lastUpdated is still seen. */
export const DEFAULT_PULL_OVERLAP_MS = 5_000;

/** The types read through this store, and their FHIR types. */
export interface StoredResourceTypes {
  Practitioner: Practitioner;
  PractitionerRole: PractitionerRole;
  Location: Location;
  Appointment: Appointment;
  Schedule: Schedule;
  Slot: Slot;
}
export type StoredResourceType = keyof StoredResourceTypes;
export const STORED_RESOURCE_TYPES: readonly StoredResourceType[] = ['Practitioner', 'PractitionerRole', 'Location', 'Appointment', 'Schedule', 'Slot'];

export interface StoredResource<T extends Resource> {
  /** The resource without server-managed meta (versionId, lastUpdated). */
  resource: T & { id: string };
  /** `pulled`: last written by a pull; `local`: last changed on this workstation. */
  origin: 'local' | 'pulled';
  /** The server it was last pulled from, and that server's version and lastUpdated. */
  originServer: string | null;
  remoteVersionId: string | null;
  remoteLastUpdated: string | null;
  updatedAt: string;
  /** Set when the resource was deleted; the copy stays (history). */
  deletedAt: string | null;
}

interface Row {
  resource_type: string;
  resource_id: string;
  resource_json: string;
  content_sha256: string;
  origin: 'local' | 'pulled';
  origin_server: string | null;
  remote_version_id: string | null;
  remote_last_updated: string | null;
  updated_at: string;
  deleted_at: string | null;
}

/** Hash of a resource's content as the sync engine computes it (server meta removed, canonical JSON). */
export function contentSha256(resource: Resource): string {
  return sha256(canonicalJson(sendable(resource)));
}

export class PulledResources extends StatementOwner {
  get<K extends StoredResourceType>(type: K, id: string): StoredResource<StoredResourceTypes[K]> | null {
    const row = this.sql('SELECT * FROM fhir_resources WHERE resource_type = ? AND resource_id = ?').get(type, id) as Row | undefined;
    return row ? toStored<StoredResourceTypes[K]>(row) : null;
  }

  /** Resources of a type, most recently changed first; deleted ones only when asked. */
  list<K extends StoredResourceType>(type: K, options: { includeDeleted?: boolean; limit?: number } = {}): StoredResource<StoredResourceTypes[K]>[] {
    const rows = this.sql(
      `SELECT * FROM fhir_resources WHERE resource_type = @type AND (@all = 1 OR deleted_at IS NULL) ORDER BY updated_at DESC, resource_id LIMIT @limit`,
    ).all({ type, all: options.includeDeleted ? 1 : 0, limit: options.limit ?? 1000 }) as Row[];
    return rows.map((row) => toStored<StoredResourceTypes[K]>(row));
  }

  count(type: PullType): number {
    return (this.sql('SELECT count(*) AS n FROM fhir_resources WHERE resource_type = ? AND deleted_at IS NULL').get(type) as { n: number }).n;
  }

  /**
   * A change made on this workstation: the copy is written and queued for the servers, in the caller's
   * transaction (Outbox.enqueue refuses to run outside one).
   */
  saveLocal<K extends StoredResourceType>(resource: StoredResourceTypes[K] & { resourceType: K; id: string }, outbox: Pick<Outbox, 'enqueue'>): void {
    const body = sendable(resource) as Resource & { id: string };
    outbox.enqueue('update', body);
    this.write(body, 'local', null, null, null);
  }

  /** Hash of the content held for the resource (null when none is held, or it is deleted). */
  heldContentSha256(type: string, id: string): string | null {
    const row = this.sql('SELECT content_sha256, deleted_at FROM fhir_resources WHERE resource_type = ? AND resource_id = ?').get(type, id) as { content_sha256: string; deleted_at: string | null } | undefined;
    return row && !row.deleted_at ? row.content_sha256 : null;
  }

  /** The pull's write (pull.ts, inside its transaction): never queued. */
  writePulled(resource: Resource & { id: string }, server: string, versionId: string, lastUpdated: string): void {
    this.write(sendable(resource) as Resource & { id: string }, 'pulled', server, versionId, lastUpdated);
  }

  private write(body: Resource & { id: string }, origin: 'local' | 'pulled', server: string | null, versionId: string | null, lastUpdated: string | null): void {
    this.sql(
      `INSERT INTO fhir_resources (resource_type, resource_id, resource_json, content_sha256, origin, origin_server, remote_version_id, remote_last_updated, updated_at, deleted_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
       ON CONFLICT (resource_type, resource_id) DO UPDATE SET resource_json = excluded.resource_json, content_sha256 = excluded.content_sha256, origin = excluded.origin,
         origin_server = excluded.origin_server, remote_version_id = excluded.remote_version_id, remote_last_updated = excluded.remote_last_updated,
         updated_at = excluded.updated_at, deleted_at = NULL`,
    ).run(body.resourceType, body.id, JSON.stringify(body), sha256(canonicalJson(body)), origin, server, versionId, lastUpdated, this.now().toISOString());
  }
}

function toStored<T extends Resource>(row: Row): StoredResource<T> {
  return {
    resource: JSON.parse(row.resource_json) as T & { id: string },
    origin: row.origin,
    originServer: row.origin_server,
    remoteVersionId: row.remote_version_id,
    remoteLastUpdated: row.remote_last_updated,
    updatedAt: row.updated_at,
    deletedAt: row.deleted_at,
  };
}
