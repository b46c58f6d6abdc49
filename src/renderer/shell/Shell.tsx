import { useState, type ReactNode } from 'react';
import type { SessionInfo } from '../../shared/ipc.js';
import { ROLE_LABELS, type AreaId } from '../../shared/roles.js';
import { errorMessage } from '../api/errors.js';
import { EmptyState } from '../components/ui.js';
import { AdminArea } from '../features/admin/AdminArea.js';
import { PatientsArea } from '../features/patients/PatientsArea.js';
import { ScheduleArea } from '../features/schedule/ScheduleArea.js';
import { SyncArea } from '../features/sync/SyncArea.js';
import { ViewerArea } from '../features/viewer/ViewerArea.js';
import { WardArea } from '../features/ward/WardArea.js';
import { endBreakGlass, lockNow, signOut } from '../stores/actions.js';
import { describeConnectivity, useConnectivity } from '../stores/connectivity.js';
import { href, useRoute } from '../stores/route.js';
import { areaAllowed, isAreaId, visibleAreas } from './areas.js';
import { Home } from './Home.js';
import { Inbox } from './Inbox.js';
import { hasPermission } from '../stores/session.js';
import { useActivityHeartbeat, useConnectivityPolling, useNow } from './hooks.js';

export function Shell({ session }: { session: SessionInfo }) {
  useActivityHeartbeat(session);
  useConnectivityPolling(!session.locked);
  const segments = useRoute((s) => s.segments);
  const first = segments[0];
  const current: AreaId | 'home' = isAreaId(first) ? first : 'home';

  return (
    <div className="shell">
      <TopBar session={session} />
      <div className="shell__body">
        <Nav session={session} current={current} />
        <main className="shell__content" data-testid="content" id="content" tabIndex={-1}>
          <AreaContent session={session} area={current} rest={segments.slice(1)} />
        </main>
      </div>
    </div>
  );
}

function AreaContent({ session, area, rest }: { session: SessionInfo; area: AreaId | 'home'; rest: string[] }): ReactNode {
  if (area === 'home') return <Home session={session} />;
  if (!areaAllowed(session, area)) {
    return (
      <EmptyState title="Not available for your role" testId="area-forbidden">
        <p>
          {ROLE_LABELS[session.user.role]} accounts do not have access to this area. <a href={href('/')}>Back to home</a>
        </p>
      </EmptyState>
    );
  }
  switch (area) {
    case 'viewer':
      return <ViewerArea />;
    case 'ward':
      return <WardArea />;
    case 'schedule':
      return <ScheduleArea />;
    case 'sync':
      return <SyncArea session={session} />;
    case 'patients':
      return <PatientsArea session={session} rest={rest} />;
    case 'admin':
      return <AdminArea session={session} rest={rest} />;
  }
}

function Nav({ session, current }: { session: SessionInfo; current: AreaId | 'home' }) {
  const areas = visibleAreas(session);
  return (
    <nav className="nav" data-testid="nav" aria-label="Main">
      <ul>
        <li>
          <a href={href('/')} className="nav__link" aria-current={current === 'home' ? 'page' : undefined}>
            Home
          </a>
        </li>
        {areas.map((a) => (
          <li key={a.id}>
            <a href={href(`/${a.id}`)} className="nav__link" aria-current={current === a.id ? 'page' : undefined} data-testid={`nav-${a.id}`}>
              {a.label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}

function TopBar({ session }: { session: SessionInfo }) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const doLock = async () => {
    setBusy(true);
    setProblem(null);
    try {
      await lockNow();
    } catch (error) {
      setProblem(errorMessage(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <header className="topbar" data-testid="top-bar">
      <a className="topbar__brand" href={href('/')}>
        NeuroWard
      </a>
      <ConnectivityIndicator linked={areaAllowed(session, 'sync')} />
      {session.breakGlass ? <BreakGlassBadge until={session.breakGlass.until} reason={session.breakGlass.reason} /> : null}
      <div className="topbar__spacer" />
      {problem ? (
        <span className="topbar__problem" role="alert">
          {problem}
        </span>
      ) : null}
      {hasPermission(session, 'patients:read') && !session.locked ? <Inbox /> : null}
      <div className="topbar__user" data-testid="current-user">
        <span className="topbar__name">{session.user.displayName}</span>
        <span className="topbar__role">{ROLE_LABELS[session.user.role]}</span>
      </div>
      <button type="button" className="btn btn--small" onClick={() => void doLock()} disabled={busy}>
        Lock
      </button>
      <button type="button" className="btn btn--small btn--ghost" onClick={() => void signOut()}>
        Sign out
      </button>
    </header>
  );
}

/** The link state and the queued-changes count; a link to the Sync screen for those who may open it. */
function ConnectivityIndicator({ linked }: { linked: boolean }) {
  const data = useConnectivity((s) => s.data);
  const browserOnline = useConnectivity((s) => s.browserOnline);
  const view = describeConnectivity({ data, browserOnline });
  const content = (
    <>
      <span className="connectivity__dot" aria-hidden="true" />
      {view.text}
    </>
  );
  return linked ? (
    <a className={`connectivity connectivity--${view.tone} connectivity--link`} href={href('/sync')} data-testid="connectivity" data-state={view.tone} title={`${view.detail}\nOpen FHIR sync`} role="status">
      {content}
    </a>
  ) : (
    <span className={`connectivity connectivity--${view.tone}`} data-testid="connectivity" data-state={view.tone} title={view.detail} role="status">
      {content}
    </span>
  );
}

function BreakGlassBadge({ until, reason }: { until: string; reason: string }) {
  const now = useNow(10_000);
  const ms = Date.parse(until) - now;
  const minutes = Math.max(0, Math.ceil(ms / 60_000));
  const [problem, setProblem] = useState<string | null>(null);
  return (
    <span className="breakglass-badge" data-testid="break-glass-badge" title={`Reason: ${reason}`}>
      <span>
        Break glass · {minutes} min left
      </span>
      <button
        type="button"
        className="breakglass-badge__end"
        onClick={() => {
          setProblem(null);
          endBreakGlass().catch((e: unknown) => setProblem(errorMessage(e)));
        }}
      >
        End now
      </button>
      {problem ? <span role="alert">{problem}</span> : null}
    </span>
  );
}
