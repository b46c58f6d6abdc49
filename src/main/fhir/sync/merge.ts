/**
 * Field-level view of a sync conflict, and merge by field: a person picks, per top-level element of the
 * resource, the workstation's copy ("mine") or the server's ("theirs"). `resourceType` and `id` are the
 * resource's identity and `meta` is bookkeeping (version, and our own security labels and tags, which
 * stay ours), so none of the three is offered; elements equal on both sides need no choice.
 */
import type { Resource } from '@medplum/fhirtypes';
import { NwError } from '../../../shared/errors.js';
import { canonicalJson } from './changes.js';

export type FieldSide = 'mine' | 'theirs';

/** Elements that are never picked one by one. */
export const NOT_MERGED_FIELDS: readonly string[] = ['resourceType', 'id', 'meta'];

export interface FieldDifference {
  field: string;
  /** The element in each copy as JSON text; null where that copy lacks it (or the copy is a deletion). */
  base: string | null;
  mine: string | null;
  theirs: string | null;
  /** Mine and theirs differ: a merge must say which side this field takes. */
  differs: boolean;
  changedByMe: boolean;
  changedByThem: boolean;
}

type Fields = Record<string, unknown>;

function element(resource: Resource | null, field: string): string | null {
  if (!resource) return null;
  const value = (resource as unknown as Fields)[field];
  return value === undefined ? null : canonicalJson(value);
}

/** Every top-level element of the three copies (base, mine, theirs), in a stable order. */
export function fieldDifferences(base: Resource | null, mine: Resource | null, theirs: Resource | null): FieldDifference[] {
  const names = new Set<string>();
  for (const copy of [base, mine, theirs]) for (const key of Object.keys(copy ?? {})) if (!NOT_MERGED_FIELDS.includes(key)) names.add(key);
  return [...names].sort().map((field) => {
    const b = element(base, field);
    const m = element(mine, field);
    const t = element(theirs, field);
    return { field, base: b, mine: m, theirs: t, differs: m !== t, changedByMe: m !== b, changedByThem: t !== b };
  });
}

/**
 * The merged resource: identity and `meta` from mine, each differing element from the side chosen for
 * it, equal elements as they are. Every differing element must be chosen, and only elements of the two
 * copies may be named, so a merge never guesses and a typo never passes silently.
 */
export function mergeByField(mine: Resource, theirs: Resource, choices: Readonly<Record<string, FieldSide>>): Resource {
  if (mine.resourceType !== theirs.resourceType || mine.id !== theirs.id) throw new NwError('bad-request', 'The two copies are not the same resource.');
  const differences = fieldDifferences(null, mine, theirs);
  const known = new Set(differences.map((d) => d.field));
  const unknown = Object.keys(choices).filter((field) => !known.has(field));
  if (unknown.length) throw new NwError('bad-request', `Not an element of either copy of ${mine.resourceType}/${mine.id}: ${unknown.join(', ')}.`, unknown.map((f) => ({ path: `fields.${f}`, message: 'not an element of either copy' })));
  const unchosen = differences.filter((d) => d.differs && !choices[d.field]).map((d) => d.field);
  if (unchosen.length) throw new NwError('bad-request', `Choose mine or theirs for each differing element: ${unchosen.join(', ')}.`, unchosen.map((f) => ({ path: `fields.${f}`, message: 'choose mine or theirs' })));
  const merged: Fields = { resourceType: mine.resourceType, id: mine.id, ...(mine.meta ? { meta: mine.meta } : {}) };
  for (const { field, differs } of differences) {
    const source = differs && choices[field] === 'theirs' ? theirs : mine;
    const value = (source as unknown as Fields)[field];
    if (value !== undefined) merged[field] = structuredClone(value);
  }
  return merged as unknown as Resource;
}
