/**
 * From outbox rows to the changes a server receives. A row holds one resource (create, update or
 * delete) or a transaction/batch Bundle of client-id PUT and DELETE entries (the vital-signs minute
 * bundles, vitals/observations.ts); either way each change names one resource by its client-assigned id,
 * so it is sent as `PUT Type/id` (or `DELETE Type/id`) and a resend can never create a second copy.
 *
 * Also here: the resource as sent (server-managed meta removed), its content hash, the comparison
 * that recognises our own earlier write on the server, and the order that puts referenced resources first.
 */
import { createHash } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';

export type ChangeOperation = 'put' | 'delete';

/** One resource change of one outbox row. */
export interface ResourceChange {
  outboxId: number;
  resourceType: string;
  id: string;
  operation: ChangeOperation;
  /** The resource as it is sent (no meta.versionId/lastUpdated); null for a delete. */
  resource: Resource | null;
  /** SHA-256 of the canonical JSON of `resource` ('' for a delete). */
  contentSha256: string;
}

export interface OutboxRow {
  id: number;
  resource_type: string;
  resource_id: string;
  operation: 'create' | 'update' | 'delete';
  resource_json: string;
  fhir_valid: number | null;
}

/** Why a row cannot be sent at all (no client id, not JSON): it becomes a dead letter. */
export class UnsendableRow extends Error {
  constructor(
    readonly row: Pick<OutboxRow, 'id' | 'resource_type' | 'resource_id'>,
    message: string,
  ) {
    super(message);
    this.name = 'UnsendableRow';
  }
}

export function keyOf(change: Pick<ResourceChange, 'resourceType' | 'id'>): string {
  return `${change.resourceType}/${change.id}`;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const RESOURCE_TYPE = /^[A-Z][A-Za-z]+$/;

/** The resource without the elements the server assigns (a server keeps or rejects ours otherwise). */
export function sendable(resource: Resource): Resource {
  if (!resource.meta || (resource.meta.versionId === undefined && resource.meta.lastUpdated === undefined)) return resource;
  const { versionId: _versionId, lastUpdated: _lastUpdated, ...meta } = resource.meta;
  const copy = { ...resource } as Resource;
  if (Object.keys(meta).length > 0) copy.meta = meta;
  else delete copy.meta;
  return copy;
}

/** JSON with object keys sorted at every level, so equal content gives equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + (value[i] === undefined ? 'null' : canonicalJson(value[i]));
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const inner = record[key];
    if (inner === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(inner)}`;
    first = false;
  }
  return `${out}}`;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function change(outboxId: number, resourceType: string, id: string, operation: ChangeOperation, resource: Resource | null): ResourceChange {
  const body = resource ? sendable(resource) : null;
  return { outboxId, resourceType, id, operation, resource: body, contentSha256: body ? sha256(canonicalJson(body)) : '' };
}

interface BundleLike {
  resourceType: 'Bundle';
  type?: string;
  entry?: { resource?: Resource; request?: { method?: string; url?: string } }[];
}

/** The changes of one outbox row, in the row's order. Throws UnsendableRow for what cannot be sent safely. */
export function changesOfRow(row: OutboxRow): ResourceChange[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(row.resource_json);
  } catch {
    throw new UnsendableRow(row, `outbox row ${row.id} (${row.resource_type}/${row.resource_id}) does not hold JSON`);
  }
  const resource = parsed as Resource;
  if (resource.resourceType === 'Bundle' && ((parsed as BundleLike).type === 'transaction' || (parsed as BundleLike).type === 'batch')) {
    return bundleChanges(row, parsed as BundleLike);
  }
  if (!RESOURCE_TYPE.test(row.resource_type) || !FHIR_ID.test(row.resource_id)) {
    throw new UnsendableRow(row, `outbox row ${row.id}: "${row.resource_type}/${row.resource_id}" is not a resource type with a client-assigned FHIR id`);
  }
  if (resource.resourceType !== row.resource_type || resource.id !== row.resource_id) {
    throw new UnsendableRow(row, `outbox row ${row.id}: the row names ${row.resource_type}/${row.resource_id} but holds ${resource.resourceType}/${resource.id ?? '(no id)'}`);
  }
  return [change(row.id, row.resource_type, row.resource_id, row.operation === 'delete' ? 'delete' : 'put', row.operation === 'delete' ? null : resource)];
}

function bundleChanges(row: OutboxRow, bundle: BundleLike): ResourceChange[] {
  const changes: ResourceChange[] = [];
  for (const [i, entry] of (bundle.entry ?? []).entries()) {
    const method = entry.request?.method;
    const url = entry.request?.url ?? '';
    const match = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(url);
    if ((method !== 'PUT' && method !== 'DELETE') || !match) {
      // A POST (server-assigned id) or a conditional URL could duplicate on a resend: refused, not guessed.
      throw new UnsendableRow(row, `outbox row ${row.id}: Bundle entry ${i} is "${method ?? '?'} ${url}"; only PUT and DELETE of Type/id (client-assigned ids) can be resent without duplicates`);
    }
    const [, resourceType, id] = match as unknown as [string, string, string];
    if (method === 'PUT') {
      if (!entry.resource || entry.resource.resourceType !== resourceType || entry.resource.id !== id) {
        throw new UnsendableRow(row, `outbox row ${row.id}: Bundle entry ${i} (PUT ${url}) does not carry that resource`);
      }
      changes.push(change(row.id, resourceType, id, 'put', entry.resource));
    } else {
      changes.push(change(row.id, resourceType, id, 'delete', null));
    }
  }
  return changes;
}

/** Remote meta elements we did not send (server bookkeeping) are not a difference. */
function withoutServerMeta(remote: Resource, local: Resource): Resource {
  const remoteMeta = remote.meta as Record<string, unknown> | undefined;
  if (!remoteMeta) return remote;
  const localMeta = (local.meta ?? {}) as Record<string, unknown>;
  const kept = Object.fromEntries(Object.entries(remoteMeta).filter(([k]) => k in localMeta && k !== 'versionId' && k !== 'lastUpdated'));
  const copy = { ...remote } as Resource;
  if (Object.keys(kept).length > 0) copy.meta = kept as Resource['meta'];
  else delete copy.meta;
  return copy;
}

/** Whether the server's copy holds exactly what we would send (then it is our own earlier write). */
export function sameContent(remote: Resource, local: Resource): boolean {
  return canonicalJson(withoutServerMeta(remote, local)) === canonicalJson(sendable(local));
}

/** `Type/id` of every literal reference in the resource (contained and absolute ones excluded). */
export function referencesOf(resource: Resource): Set<string> {
  const found = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
        if (key === 'reference' && typeof inner === 'string') {
          const match = /^([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(\/_history\/.*)?$/.exec(inner);
          if (match) found.add(match[1]!);
        } else if (typeof inner === 'object') visit(inner);
      }
    }
  };
  visit(resource);
  return found;
}

/**
 * Orders changes so that a resource comes after the ones it references within the same set (a server
 * that checks references on write then finds them); otherwise the outbox order is kept. Deletes go
 * last, in reverse outbox order, so a referrer is removed before what it refers to. Reference cycles
 * keep their outbox order.
 */
export function referenceOrder(changes: readonly ResourceChange[]): ResourceChange[] {
  const puts = changes.filter((c) => c.operation === 'put');
  const deletes = changes.filter((c) => c.operation === 'delete').reverse();
  const byKey = new Map(puts.map((c) => [keyOf(c), c]));
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const ordered: ResourceChange[] = [];
  const place = (c: ResourceChange): void => {
    const key = keyOf(c);
    if (placed.has(key) || visiting.has(key)) return;
    visiting.add(key);
    for (const ref of referencesOf(c.resource!)) {
      const target = byKey.get(ref);
      if (target && ref !== key) place(target);
    }
    visiting.delete(key);
    placed.add(key);
    ordered.push(c);
  };
  for (const c of puts) place(c);
  return [...ordered, ...deletes];
}
