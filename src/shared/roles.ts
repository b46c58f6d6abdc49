/**
 * Roles and permissions. Every IPC channel names exactly one permission (see ipc.ts);
 * a role is nothing more than the set of permissions it grants.
 *
 * Least privilege: the administrator manages accounts and reads the audit trail but does
 * not read clinical records; restricted records need break-glass even for clinicians.
 */
export const ROLES = ['admin', 'radiologist', 'physician', 'nurse', 'receptionist'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_LABELS: Record<Role, string> = {
  admin: 'Administrator',
  radiologist: 'Radiologist',
  physician: 'Physician',
  nurse: 'Ward nurse',
  receptionist: 'Receptionist',
};

/** Granted by role. */
export const PERMISSIONS = [
  'patients:read',
  'patients:write',
  /**
   * Register a patient from an imported study's DICOM identity, on confirmation, in the transaction of
   * the study (imaging.import / imaging.linkPatient with createPatient): narrower than patients:write,
   * which also edits records and registers anyone.
   */
  'patients:create-from-study',
  'imaging:read',
  'imaging:write',
  'vitals:read',
  'alarms:acknowledge',
  /** Per-patient monitoring settings, e.g. the NEWS2 SpO2 scale: a decision of the responsible clinician (RCP). */
  'vitals:configure',
  /** Admit, transfer and discharge patients (ADT): who is in which bed, so whose readings they are. */
  'adt:write',
  'schedule:read',
  'schedule:write',
  /** The Sync screen: each server's state, conflicts (their content only with patients:read) and dead letters. */
  'sync:read',
  /** Run a pass now, resolve conflicts, discard or requeue dead letters. */
  'sync:manage',
  'users:manage',
  'audit:read',
  'breakglass:invoke',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/**
 * Pseudo-permissions used by the channel table only:
 * - `public`: no session needed (status, sign-in, first-run setup);
 * - `session`: any signed-in user, also while their session is locked (unlock, sign out).
 * - `active-session`: any signed-in user whose session is not locked.
 * - `patients:read-restricted`: granted only by an active break-glass grant.
 */
export type ChannelPermission = Permission | 'public' | 'session' | 'active-session' | 'patients:read-restricted';

/*
 * Sync: every role reads the Sync screen (the top bar's queued-changes count links there, and whether
 * one's own work has left the workstation is nobody's secret; a conflict's content still needs
 * patients:read). Acting on it (sync:manage) is for the administrator, who runs the link to the
 * servers (retry now, dead letters: discard or requeue), and the physician, who decides what a patient's
 * record says when the workstation and a server disagree. A conflict is resolved only by someone who
 * may read its content, so the administrator cannot resolve a patient's (no patients:read), and nurses,
 * receptionists and radiologists do not decide between two versions of a record.
 */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  admin: ['users:manage', 'audit:read', 'sync:read', 'sync:manage'],
  // Radiologists read the schedule: the scanner's list of the day.
  radiologist: ['patients:read', 'patients:create-from-study', 'imaging:read', 'imaging:write', 'schedule:read', 'breakglass:invoke', 'sync:read'],
  physician: [
    'patients:read',
    'patients:write',
    'imaging:read',
    'vitals:read',
    'alarms:acknowledge',
    'vitals:configure',
    'adt:write',
    'schedule:read',
    'schedule:write',
    'breakglass:invoke',
    'sync:read',
    'sync:manage',
  ],
  nurse: ['patients:read', 'vitals:read', 'alarms:acknowledge', 'adt:write', 'schedule:read', 'breakglass:invoke', 'sync:read'],
  receptionist: ['patients:read', 'patients:write', 'schedule:read', 'schedule:write', 'sync:read'],
};

export function roleHasPermission(role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].includes(permission);
}

/** Areas of the workstation; navigation shows an area when the role holds its permission. */
export const AREAS = [
  { id: 'viewer', label: 'Viewer', permission: 'imaging:read' },
  { id: 'ward', label: 'Ward', permission: 'vitals:read' },
  { id: 'schedule', label: 'Schedule', permission: 'schedule:read' },
  { id: 'patients', label: 'Patients', permission: 'patients:read' },
  { id: 'sync', label: 'Sync', permission: 'sync:read' },
  { id: 'admin', label: 'Admin', permission: 'users:manage' },
] as const satisfies readonly { id: string; label: string; permission: Permission }[];
export type AreaId = (typeof AREAS)[number]['id'];
