/** Session actions used from more than one place. */
import { call } from '../api/client.js';
import { errorMessage } from '../api/errors.js';
import { refreshStatus } from './app.js';
import { navigate } from './route.js';
import { useSession } from './session.js';

export async function signOut(): Promise<void> {
  navigate('/');
  try {
    await call('auth.signOut', {});
    useSession.getState().endSession(null);
  } catch (error) {
    // The host no longer knows the session (or cannot be reached): forget it here all the same.
    useSession.getState().endSession(`Signed out on this screen. ${errorMessage(error)}`);
    void refreshStatus();
  }
}

export async function lockNow(): Promise<void> {
  const session = await call('auth.lock', {});
  useSession.getState().setSession(session);
}

export async function endBreakGlass(): Promise<void> {
  const session = await call('auth.endBreakGlass', {});
  useSession.getState().setSession(session);
}
