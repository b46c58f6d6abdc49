/** Chooses the screen from the app status and session; everything else lives in the screens. */
import { retryConnectionNow } from './api/client.js';
import { ChangePasswordScreen } from './screens/ChangePassword.js';
import { ConnectingScreen } from './screens/Connecting.js';
import { LockScreen } from './screens/Lock.js';
import { AlarmWatch } from './features/ward/AlarmWatch.js';
import { DemoAccountsScreen, SetupScreen } from './screens/Setup.js';
import { SignInScreen } from './screens/SignIn.js';
import { StoreErrorScreen } from './screens/StoreError.js';
import { StoreUnlockScreen } from './screens/StoreUnlock.js';
import { Shell } from './shell/Shell.js';
import { useApp } from './stores/app.js';
import { useSession } from './stores/session.js';

export function App() {
  const status = useApp((s) => s.status);
  const demoAccounts = useApp((s) => s.demoAccounts);
  const session = useSession((s) => s.session);

  let screen;
  if (!status) screen = <ConnectingScreen />;
  else if (status.store === 'error') screen = <StoreErrorScreen status={status} />;
  else if (status.store === 'locked') screen = <StoreUnlockScreen status={status} />;
  else if (status.setupRequired || status.store === 'uninitialized') screen = <SetupScreen status={status} />;
  else if (demoAccounts) screen = <DemoAccountsScreen accounts={demoAccounts} />;
  else if (!session) screen = <SignInScreen status={status} />;
  else if (session.locked) screen = <LockScreen session={session} />;
  else if (session.mustChangePassword) screen = <ChangePasswordScreen session={session} />;
  else screen = <Shell key={session.user.id} session={session} />;

  const watchesWard = Boolean(session && status?.store === 'ready' && session.permissions.includes('vitals:read'));
  return (
    <>
      <ConnectionBanner />
      {watchesWard && session ? <AlarmWatch key={session.user.id} usable={!session.locked && !session.mustChangePassword} /> : null}
      {screen}
    </>
  );
}

/** While the WebSocket to the host is down after having worked. */
function ConnectionBanner() {
  const connection = useApp((s) => s.connection);
  const hasStatus = useApp((s) => s.status !== null);
  if (!hasStatus || !connection.everOpened || connection.state === 'open') return null;
  if (connection.launchKeyRefused) {
    return (
      <div className="connection-banner" role="alert" data-testid="connection-banner">
        <span>
          The NeuroWard host was restarted and has a new launch key: open the address it printed at its start (also in
          headless-host.json in its data folder). Anything you were sending may not have been saved.
        </span>
      </div>
    );
  }
  return (
    <div className="connection-banner" role="alert" data-testid="connection-banner">
      <span>
        Connection to the NeuroWard host lost — reconnecting{connection.attempt > 1 ? ` (attempt ${connection.attempt})` : ''}… Anything
        you were sending may not have been saved.
      </span>
      <button type="button" className="btn btn--small" onClick={() => retryConnectionNow()}>
        Retry now
      </button>
    </div>
  );
}
