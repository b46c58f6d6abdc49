import type { SessionInfo } from '../../shared/ipc.js';
import { ROLE_LABELS } from '../../shared/roles.js';
import { formatDateTime } from '../components/ui.js';
import { href } from '../stores/route.js';
import { AREA_DESCRIPTIONS, visibleAreas } from './areas.js';

export function Home({ session }: { session: SessionInfo }) {
  const areas = visibleAreas(session);
  return (
    <section className="home" data-testid="home" aria-labelledby="home-title">
      <header className="page-header">
        <h1 id="home-title">Welcome, {session.user.displayName}</h1>
        <p className="muted">
          Signed in as {ROLE_LABELS[session.user.role]} · session ends {formatDateTime(session.expiresAt)} · locks after{' '}
          {Math.round(session.idleLockMs / 60_000)} min without activity
        </p>
      </header>
      {areas.length ? (
        <ul className="cards">
          {areas.map((a) => (
            <li key={a.id}>
              <a className="card" href={href(`/${a.id}`)} data-testid={`home-card-${a.id}`}>
                <span className="card__title">{a.label}</span>
                <span className="card__body">{AREA_DESCRIPTIONS[a.id].now}</span>
                {AREA_DESCRIPTIONS[a.id].coming ? <span className="card__coming">Coming: {AREA_DESCRIPTIONS[a.id].coming}</span> : null}
              </a>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">Your role has no areas on this workstation yet. Ask an administrator.</p>
      )}
    </section>
  );
}
