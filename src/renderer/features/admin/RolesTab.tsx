import { PERMISSIONS, ROLES, ROLE_LABELS, roleHasPermission, type Permission } from '../../../shared/roles.js';

const PERMISSION_LABELS: Record<Permission, string> = {
  'patients:read': 'Read patient records',
  'patients:write': 'Register and edit patients',
  'patients:create-from-study': 'Register a patient from an imported study (DICOM identity)',
  'imaging:read': 'View imaging',
  'imaging:write': 'Import imaging, write reads',
  'vitals:read': 'View ward vitals',
  'alarms:acknowledge': 'Acknowledge alarms',
  'vitals:configure': 'Set the NEWS2 SpO2 scale of a patient',
  'adt:write': 'Admit, transfer and discharge patients (beds)',
  'schedule:read': 'View the schedule',
  'schedule:write': 'Book and change appointments',
  'sync:read': 'View FHIR sync state and conflicts (their content with patient read access)',
  'sync:manage': 'Retry FHIR sync, resolve conflicts, discard or requeue dead letters',
  'users:manage': 'Manage staff accounts',
  'audit:read': 'Read and verify the audit trail',
  'breakglass:invoke': 'Break glass to open restricted records',
};

/** Read-only: what each role grants (from src/shared/roles.ts). */
export function RolesTab() {
  return (
    <div className="roles">
      <p className="muted">
        Roles are fixed on this workstation. A role is the set of permissions it grants; restricted records additionally need break-glass
        access, which is time-limited and audited.
      </p>
      <div className="table-scroll">
        <table className="table table--matrix" data-testid="roles-matrix">
          <caption className="visually-hidden">Permissions granted by each role</caption>
          <thead>
            <tr>
              <th scope="col">Permission</th>
              {ROLES.map((r) => (
                <th scope="col" key={r}>
                  {ROLE_LABELS[r]}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {PERMISSIONS.map((p) => (
              <tr key={p}>
                <th scope="row">
                  <span>{PERMISSION_LABELS[p]}</span> <span className="mono muted small">{p}</span>
                </th>
                {ROLES.map((r) => {
                  const granted = roleHasPermission(r, p);
                  return (
                    <td key={r} className={granted ? 'cell-granted' : 'cell-denied'} aria-label={granted ? 'granted' : 'not granted'}>
                      {granted ? '✓' : '—'}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
