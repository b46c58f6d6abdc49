import type { SessionInfo } from '../../../shared/ipc.js';
import { hasPermission } from '../../stores/session.js';
import { href } from '../../stores/route.js';
import { AuditTab } from './AuditTab.js';
import { MonitorsTab } from './MonitorsTab.js';
import { RolesTab } from './RolesTab.js';
import { UsersTab } from './UsersTab.js';

type TabId = 'users' | 'monitors' | 'roles' | 'audit';

/** #/admin/users, #/admin/monitors, #/admin/roles, #/admin/audit */
export function AdminArea({ session, rest }: { session: SessionInfo; rest: string[] }) {
  const tabs: { id: TabId; label: string }[] = [
    ...(hasPermission(session, 'users:manage') ? [{ id: 'users' as const, label: 'Users' }] : []),
    ...(hasPermission(session, 'users:manage') ? [{ id: 'monitors' as const, label: 'Monitors' }] : []),
    { id: 'roles', label: 'Roles' },
    ...(hasPermission(session, 'audit:read') ? [{ id: 'audit' as const, label: 'Audit' }] : []),
  ];
  const requested = rest[0];
  const current: TabId = tabs.find((t) => t.id === requested)?.id ?? tabs[0]?.id ?? 'roles';
  return (
    <section className="page" data-testid="admin" aria-labelledby="admin-title">
      <header className="page-header">
        <h1 id="admin-title">Administration</h1>
      </header>
      <div className="tabs" role="tablist" aria-label="Administration sections">
        {tabs.map((t) => (
          <a
            key={t.id}
            role="tab"
            id={`admin-tab-${t.id}`}
            aria-selected={current === t.id}
            aria-controls="admin-panel"
            className="tabs__tab"
            href={href(`/admin/${t.id}`)}
          >
            {t.label}
          </a>
        ))}
      </div>
      <div role="tabpanel" id="admin-panel" aria-labelledby={`admin-tab-${current}`} className="tabs__panel">
        {current === 'users' ? <UsersTab session={session} /> : current === 'monitors' ? <MonitorsTab /> : current === 'audit' ? <AuditTab /> : <RolesTab />}
      </div>
    </section>
  );
}
