/**
 * FHIR sync (#/sync): per server whether it answers, what waits for it, its last success and error and
 * the next retry; conflicts side by side (base | mine | theirs per element, differing ones marked) with
 * keep mine / take theirs / merge by element; dead letters with the server's message, discard / requeue.
 */
import { useEffect, useMemo, useState } from 'react';
import type { SessionInfo, SyncConflictView, SyncDeadLetterView, SyncServerStatusView } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { Alert, Badge, EmptyState, ErrorAlert, formatDateTime, useAction } from '../../components/ui.js';
import { hasPermission } from '../../stores/session.js';
import { loadSync, SYNC_POLL_MS, useSync } from '../../stores/sync.js';

type Side = 'mine' | 'theirs';

export function SyncArea({ session }: { session: SessionInfo }) {
  const { status, conflicts, deadLetters, error, loadedAt } = useSync();
  const canManage = hasPermission(session, 'sync:manage');
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    void loadSync(true);
    const timer = setInterval(() => {
      // Lists are audited reads: fetched again only when the counts say they changed.
      const before = useSync.getState();
      void loadSync(false).then(() => {
        const after = useSync.getState().status;
        const count = (s: typeof after, key: 'openConflicts' | 'openDeadLetters') => s?.servers.reduce((n, x) => n + x[key], 0) ?? 0;
        if (count(after, 'openConflicts') !== before.conflicts.length || count(after, 'openDeadLetters') !== before.deadLetters.length) void loadSync(true);
      });
    }, SYNC_POLL_MS);
    return () => clearInterval(timer);
  }, []);

  const runNow = useAction(async () => {
    const result = await call('sync.runNow', {});
    setNotice(result.servers.map((s) => `${s.server}: ${s.state}${s.sent ? `, ${s.sent} sent` : ''}${s.error ? ` — ${s.error}` : ''}`).join(' · ') || 'Nothing to send.');
    await loadSync(true);
  });

  return (
    <section className="page sync" data-testid="area-sync" aria-labelledby="sync-title">
      <header className="page-header page-header--row">
        <div>
          <h1 id="sync-title">FHIR sync</h1>
          <p className="muted small">
            {status ? `${status.outboxPending} change${status.outboxPending === 1 ? '' : 's'} not yet sent to every server` : 'Loading…'}
            {conflicts.length ? ` · ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'} to resolve (not counted as queued)` : ''}
            {loadedAt ? ` · updated ${new Date(loadedAt).toLocaleTimeString()}` : ''}
          </p>
        </div>
        {canManage && status?.running ? (
          <button type="button" className="btn btn--primary" data-testid="sync-run-now" onClick={() => void runNow.run()} disabled={runNow.busy}>
            {runNow.busy ? 'Sending…' : 'Retry now'}
          </button>
        ) : null}
      </header>
      <ErrorAlert error={error ?? runNow.error} />
      {notice ? (
        <Alert tone="info" testId="sync-notice">
          {notice}
        </Alert>
      ) : null}

      {status && !status.configured ? (
        <EmptyState title="No FHIR server is configured" testId="sync-none">
          <p>
            Everything stays on this workstation: {status.outboxPending} change{status.outboxPending === 1 ? '' : 's'} wait in its outbox. An administrator adds servers
            under <span className="mono">fhir.servers</span> in the configuration file (or <span className="mono">NEUROWARD_FHIR_SERVERS</span>); the queued changes are sent
            once one is configured.
          </p>
        </EmptyState>
      ) : null}
      {status?.configured && !status.running ? <Alert tone="warning">Sync is not running: the store is not open.</Alert> : null}

      {status?.servers.length ? (
        <ul className="sync-servers" aria-label="FHIR servers">
          {status.servers.map((server) => (
            <ServerCard key={server.name} server={server} />
          ))}
        </ul>
      ) : null}

      {status?.running ? (
        <>
          <h2 className="subhead">Conflicts ({conflicts.length})</h2>
          {conflicts.length === 0 ? (
            <p className="muted" data-testid="sync-no-conflicts">
              No open conflicts: no record on which this workstation and a server disagree.
            </p>
          ) : (
            <div className="sync-conflicts">
              {conflicts.map((c) => (
                <ConflictPanel key={`${c.id}:${c.remoteVersionId ?? ''}`} conflict={c} canManage={canManage} onResolved={setNotice} />
              ))}
            </div>
          )}

          <h2 className="subhead">Dead letters ({deadLetters.length})</h2>
          {deadLetters.length === 0 ? (
            <p className="muted" data-testid="sync-no-dead-letters">
              No dead letters: no change was refused by a server.
            </p>
          ) : (
            <DeadLetters letters={deadLetters} canManage={canManage} onDone={setNotice} />
          )}
        </>
      ) : null}
    </section>
  );
}

function ServerCard({ server }: { server: SyncServerStatusView }) {
  const link =
    server.reachable === null ? <Badge>not contacted yet</Badge> : server.reachable ? <Badge tone="success">reachable</Badge> : <Badge tone="danger">unreachable</Badge>;
  return (
    <li className="panel sync-server" data-testid={`sync-server-${server.name}`} data-reachable={String(server.reachable)}>
      <div className="sync-server__head">
        <strong className="sync-server__name">{server.name}</strong> {link}
        {server.openConflicts ? <Badge tone="warning">{server.openConflicts} conflict{server.openConflicts === 1 ? '' : 's'}</Badge> : null}
        {server.openDeadLetters ? <Badge tone="danger">{server.openDeadLetters} dead letter{server.openDeadLetters === 1 ? '' : 's'}</Badge> : null}
      </div>
      <div className="mono muted small">{server.baseUrl}</div>
      <dl className="sync-server__facts">
        <dt>Pending</dt>
        <dd data-testid="sync-pending">{server.pending}</dd>
        <dt>In doubt</dt>
        <dd title="Sent without an answer: read back from the server before anything is sent again">{server.inDoubt}</dd>
        <dt>Last success</dt>
        <dd>{formatDateTime(server.lastSuccessAt, true)}</dd>
        <dt>Next retry</dt>
        <dd>{server.nextAttemptAt ? formatDateTime(server.nextAttemptAt, true) : server.pending ? 'soon' : '—'}</dd>
        <dt>Receives</dt>
        <dd>{server.resourceTypes === '*' ? 'all resource types' : server.resourceTypes.join(', ')}</dd>
      </dl>
      {server.pull.length ? (
        <p className="muted small" data-testid="sync-pull">
          Pulls {server.pull.map((p) => p.resourceType).join(', ')}; last pull {formatDateTime(maxTime(server.pull.map((p) => p.lastSuccessAt)), true)}
          {server.pull.some((p) => p.lastError) ? (
            <span className="sync-server__error">
              {' '}
              — {server.pull.filter((p) => p.lastError).map((p) => `${p.resourceType}: ${p.lastError}`).join('; ')}
            </span>
          ) : null}
        </p>
      ) : null}
      {server.lastError ? (
        <p className="sync-server__error" role="status">
          <span className="muted small">{formatDateTime(server.lastErrorAt, true)}:</span> {server.lastError}
          {server.consecutiveFailures > 1 ? <span className="muted small"> ({server.consecutiveFailures} failures in a row)</span> : null}
        </p>
      ) : null}
    </li>
  );
}

/** The latest of some ISO times (null when none). */
function maxTime(times: (string | null)[]): string | null {
  return times.filter((t): t is string => t !== null).sort().at(-1) ?? null;
}

function pretty(json: string | null): string {
  if (json === null) return '(absent)';
  try {
    return JSON.stringify(JSON.parse(json), null, 1);
  } catch {
    return json;
  }
}

function ConflictPanel({ conflict, canManage, onResolved }: { conflict: SyncConflictView; canManage: boolean; onResolved: (message: string) => void }) {
  const fields = useMemo(() => conflict.content?.fields ?? [], [conflict.content]);
  const differing = fields.filter((f) => f.differs);
  // A side is proposed where only one side changed an element; where both did, the person chooses.
  const [sides, setSides] = useState<Record<string, Side | undefined>>(() =>
    Object.fromEntries(differing.map((f) => [f.field, f.changedByMe && !f.changedByThem ? 'mine' : !f.changedByMe && f.changedByThem ? 'theirs' : undefined])),
  );
  const [showEqual, setShowEqual] = useState(false);
  const resolve = useAction(async (choice: 'keep-mine' | 'take-theirs' | 'merge') => {
    const chosen = Object.fromEntries(Object.entries(sides).filter((e): e is [string, Side] => e[1] !== undefined));
    const result = await call('sync.resolveConflict', { id: conflict.id, choice, ...(choice === 'merge' ? { fields: chosen } : {}) });
    onResolved([result.message, result.local?.message].filter(Boolean).join(' '));
    await loadSync(true);
  });
  const unchosen = differing.filter((f) => !sides[f.field]).map((f) => f.field);
  const shown = showEqual ? fields : differing;

  return (
    <article className="panel sync-conflict" data-testid={`sync-conflict-${conflict.id}`} aria-label={`Conflict over ${conflict.resourceType}/${conflict.resourceId}`}>
      <header className="sync-conflict__head">
        <strong>
          {conflict.resourceType}/<span className="mono">{conflict.resourceId}</span>
        </strong>
        <span className="muted small">
          server “{conflict.server}” answered HTTP {conflict.httpStatus} · detected {formatDateTime(conflict.detectedAt, true)} · base version {conflict.baseVersionId ?? '—'}, theirs{' '}
          {conflict.remoteVersionId ?? '(deleted)'}
          {conflict.localOperation === 'delete' ? ' · this workstation deleted it' : ''}
        </span>
      </header>
      {conflict.content ? (
        <>
          <div className="table-scroll">
            <table className="table table--dense sync-diff" aria-label="Elements side by side">
              <thead>
                <tr>
                  <th scope="col">Element</th>
                  <th scope="col">Base (last agreed)</th>
                  <th scope="col">Mine (this workstation)</th>
                  <th scope="col">Theirs (server)</th>
                  {canManage ? <th scope="col">Merge takes</th> : null}
                </tr>
              </thead>
              <tbody>
                {shown.map((f) => (
                  <tr key={f.field} className={f.differs ? 'sync-diff__row--differs' : 'sync-diff__row--same'} data-testid={`sync-field-${f.field}`} data-differs={String(f.differs)}>
                    <th scope="row" className="mono">
                      {f.field}
                    </th>
                    <td>
                      <pre className="sync-diff__json">{pretty(f.base)}</pre>
                    </td>
                    <td className={f.differs && sides[f.field] === 'mine' ? 'sync-diff__cell--chosen' : ''}>
                      <pre className="sync-diff__json">{pretty(f.mine)}</pre>
                    </td>
                    <td className={f.differs && sides[f.field] === 'theirs' ? 'sync-diff__cell--chosen' : ''}>
                      <pre className="sync-diff__json">{pretty(f.theirs)}</pre>
                    </td>
                    {canManage ? (
                      <td className="nowrap">
                        {f.differs ? (
                          <span role="radiogroup" aria-label={`Merge: ${f.field} from`}>
                            {(['mine', 'theirs'] as const).map((side) => (
                              <label key={side} className="sync-diff__pick">
                                <input type="radio" name={`merge-${conflict.id}-${f.field}`} value={side} checked={sides[f.field] === side} onChange={() => setSides((s) => ({ ...s, [f.field]: side }))} />{' '}
                                {side}
                              </label>
                            ))}
                          </span>
                        ) : (
                          <span className="muted small">same</span>
                        )}
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <label className="small">
            <input type="checkbox" checked={showEqual} onChange={(e) => setShowEqual(e.target.checked)} /> Show the {fields.length - differing.length} equal elements too
          </label>
        </>
      ) : (
        <p className="muted" data-testid="sync-conflict-withheld">
          {conflict.contentWithheld}
        </p>
      )}
      <ErrorAlert error={resolve.error} />
      {canManage && conflict.content ? (
        <div className="form__actions">
          <button type="button" className="btn" onClick={() => void resolve.run('keep-mine')} disabled={resolve.busy}>
            Keep mine
          </button>
          <button type="button" className="btn" onClick={() => void resolve.run('take-theirs')} disabled={resolve.busy}>
            Take theirs
          </button>
          <button
            type="button"
            className="btn btn--primary"
            onClick={() => void resolve.run('merge')}
            disabled={resolve.busy || unchosen.length > 0 || conflict.content.mine === null || conflict.content.theirs === null}
            title={unchosen.length ? `Choose a side for: ${unchosen.join(', ')}` : 'Write the chosen elements to the server and to this workstation'}
          >
            Merge chosen elements
          </button>
          {unchosen.length ? <span className="muted small">Choose mine or theirs for: {unchosen.join(', ')}</span> : null}
        </div>
      ) : !canManage ? (
        <p className="muted small">Your role can see conflicts but not resolve them (a physician or an administrator does).</p>
      ) : null}
    </article>
  );
}

function DeadLetters({ letters, canManage, onDone }: { letters: SyncDeadLetterView[]; canManage: boolean; onDone: (message: string) => void }) {
  const act = useAction(async (letter: SyncDeadLetterView, action: 'discard' | 'requeue') => {
    await call(action === 'discard' ? 'sync.discardDeadLetter' : 'sync.requeueDeadLetter', { id: letter.id });
    onDone(action === 'discard' ? `${letter.resourceType}/${letter.resourceId} will not be sent to ${letter.server}.` : `${letter.resourceType}/${letter.resourceId} is queued again.`);
    await loadSync(true);
  });
  return (
    <>
      <ErrorAlert error={act.error} />
      <div className="table-scroll">
        <table className="table table--dense" data-testid="sync-dead-letters">
          <thead>
            <tr>
              <th scope="col">Server</th>
              <th scope="col">Change</th>
              <th scope="col">HTTP</th>
              <th scope="col">The server said</th>
              <th scope="col">Since</th>
              {canManage ? <th scope="col">Action</th> : null}
            </tr>
          </thead>
          <tbody>
            {letters.map((l) => (
              <tr key={l.id} data-testid={`sync-dead-letter-${l.id}`}>
                <td>{l.server}</td>
                <td className="mono">
                  {l.localOperation === 'delete' ? 'DELETE ' : ''}
                  {l.resourceType}/{l.resourceId}
                </td>
                <td>{l.httpStatus ?? '—'}</td>
                <td>{l.message}</td>
                <td className="nowrap">{formatDateTime(l.createdAt, true)}</td>
                {canManage ? (
                  <td className="nowrap">
                    <button type="button" className="btn btn--small" onClick={() => void act.run(l, 'requeue')} disabled={act.busy}>
                      Requeue
                    </button>{' '}
                    <button type="button" className="btn btn--small btn--danger-outline" onClick={() => void act.run(l, 'discard')} disabled={act.busy}>
                      Discard
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
