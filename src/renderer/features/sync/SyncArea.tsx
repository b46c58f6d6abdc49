import { EmptyState } from '../../components/ui.js';
import { describeConnectivity, useConnectivity } from '../../stores/connectivity.js';

/** FHIR synchronisation: filled by the sync module; shows the connectivity already known. */
export function SyncArea() {
  const data = useConnectivity((s) => s.data);
  const browserOnline = useConnectivity((s) => s.browserOnline);
  const view = describeConnectivity({ data, browserOnline });
  return (
    <EmptyState title="FHIR sync" testId="area-sync">
      <p>
        FHIR sync — each FHIR R4 server, its last exchange and the queue of changes waiting to be sent will appear here. Arrives with the sync
        module.
      </p>
      <h3 className="subhead">Current connectivity</h3>
      <p className={`connectivity-text connectivity-text--${view.tone}`}>{view.text}</p>
      {data && data.servers.length ? (
        <ul className="plain-list">
          {data.servers.map((s) => (
            <li key={s.baseUrl}>
              <strong>{s.name}</strong> <span className="mono muted">{s.baseUrl}</span> —{' '}
              {s.reachable === null ? 'not checked yet' : s.reachable ? 'reachable' : 'unreachable'}
            </li>
          ))}
        </ul>
      ) : data ? (
        <p className="muted">No FHIR server is configured; all work stays on this workstation.</p>
      ) : null}
    </EmptyState>
  );
}
