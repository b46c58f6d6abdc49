import type { AppStatus } from '../../shared/ipc.js';
import { Alert, Gate } from '../components/ui.js';

/** The encrypted store cannot be opened: say what happened and what to do; there is no way forward here. */
export function StoreErrorScreen({ status }: { status: AppStatus }) {
  const err = status.storeError;
  return (
    <Gate title="The workstation's data store cannot be opened" testId="screen-store-error" wide>
      <Alert tone="error" testId="store-error">
        <strong>{err?.message ?? 'The encrypted data store reported an error.'}</strong>
        {err?.code ? <span className="muted"> (code: {err.code})</span> : null}
      </Alert>
      <h2 className="gate__subtitle">What to do</h2>
      <ol className="steps">
        <li>Do not delete or move the data folder: it holds every record kept on this workstation.</li>
        <li>
          {status.passphraseSource === 'prompt'
            ? 'Restart NeuroWard and enter the store passphrase chosen when this workstation was set up.'
            : `The store passphrase comes from ${describeSource(status.passphraseSource)}: check that it is the one the store was created with, then restart NeuroWard.`}
        </li>
        <li>If the message says the store is damaged, contact your IT support and restore the data folder from the latest backup.</li>
      </ol>
      <p className="muted small">
        NeuroWard {status.version} · {status.host === 'electron' ? 'desktop' : 'headless host'}
      </p>
    </Gate>
  );
}

function describeSource(source: AppStatus['passphraseSource']): string {
  switch (source) {
    case 'env':
      return 'an environment variable';
    case 'file':
      return 'a passphrase file';
    case 'safe-storage':
      return "the operating system's protected storage";
    default:
      return 'the passphrase prompt';
  }
}
