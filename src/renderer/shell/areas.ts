/** Navigation areas from the contract's AREAS, filtered by the session's permissions. */
import type { SessionInfo } from '../../shared/ipc.js';
import { AREAS, type AreaId } from '../../shared/roles.js';

export const AREA_DESCRIPTIONS: Record<AreaId, string> = {
  viewer: 'DTI second read: diffusion series, tractography and anisotropy maps.',
  ward: 'Live bedside vitals and alarms for the ward.',
  schedule: 'Appointments, scanner slots and clinic lists.',
  patients: 'Search, open and register patient records.',
  sync: 'FHIR R4 servers and the queue of changes waiting to be sent.',
  admin: 'Staff accounts, roles and the tamper-evident audit trail.',
};

export function areaAllowed(session: SessionInfo, id: AreaId): boolean {
  // Admin covers account management and the audit trail: either permission opens it.
  if (id === 'admin') return session.permissions.includes('users:manage') || session.permissions.includes('audit:read');
  const area = AREAS.find((a) => a.id === id);
  return !!area && session.permissions.includes(area.permission);
}

export function visibleAreas(session: SessionInfo): (typeof AREAS)[number][] {
  return AREAS.filter((a) => areaAllowed(session, a.id));
}

export function isAreaId(value: string | undefined): value is AreaId {
  return AREAS.some((a) => a.id === value);
}
