import { retryConnectionNow } from '../api/client.js';
import { refreshStatus } from '../stores/app.js';
import { Alert, Gate } from '../components/ui.js';
import { useApp } from '../stores/app.js';

/** Before the first app.status answer. */
export function ConnectingScreen() {
  const statusError = useApp((s) => s.statusError);
  const connection = useApp((s) => s.connection);
  const unreachable = connection.state === 'closed' || !!statusError?.transport;
  const failing = unreachable || !!statusError;
  const title = unreachable ? 'Cannot reach the NeuroWard host' : statusError ? 'NeuroWard could not report its status' : 'Starting NeuroWard…';
  return (
    <Gate title={title} testId="screen-connecting">
      {failing ? (
        <>
          <Alert tone="warning">
            {statusError?.message ?? 'The connection to the NeuroWard host is not available.'} Retrying automatically
            {connection.attempt > 0 ? ` (attempt ${connection.attempt})` : ''}.
          </Alert>
          <p className="muted">
            {unreachable
              ? 'Check that the NeuroWard host is running on this computer.'
              : 'If this persists, restart NeuroWard and report the message above to IT support.'}
          </p>
          <div className="form__actions">
            <button type="button" className="btn" onClick={() => {
                retryConnectionNow();
                void refreshStatus();
              }}>
              Retry now
            </button>
          </div>
        </>
      ) : (
        <p className="muted" role="status">
          Connecting…
        </p>
      )}
    </Gate>
  );
}
