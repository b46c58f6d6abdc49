/** Navigation areas from the contract's AREAS, filtered by the session's permissions. */
import type { SessionInfo } from '../../shared/ipc.js';
import { AREAS, type AreaId } from '../../shared/roles.js';

/** What each area does today, and what is still to come (shown as such, so nobody relies on it). */
export const AREA_DESCRIPTIONS: Record<AreaId, { now: string; coming?: string }> = {
  viewer: {
    now: 'Import DTI series (DICOM, NIfTI), tensor fit, FA, MD, AD, RD and colour-FA maps; an AI second read (heat map, tissue clusters) for a radiologist to confirm, amend or reject.',
    coming: 'an AI model that detects lesions reliably (today’s is trained on synthetic data and is not for clinical diagnosis)',
  },
  ward: { now: 'Live bedside vitals with NEWS2, alarms to acknowledge and each alarm’s history.' },
  schedule: {
    now: 'Practitioners, rooms and scanners with their opening hours; free times, booking without double-booking, the day’s flow (arrived, in room, done) and reminders by email or letter to patients who consented.',
    coming: 'week views and drag to reschedule, follow-up tasks, recall lists and patient messages',
  },
  patients: { now: 'Search, open and register patient records.' },
  sync: { now: 'Each FHIR R4 server: what waits for it, its last success and error; conflicts to resolve side by side; changes a server refused.' },
  admin: { now: 'Staff accounts, bedside monitor credentials and the tamper-evident audit trail.' },
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
