/** The session token lives only in sessionStorage (per tab, gone when the tab closes); never localStorage. */
const KEY = 'neuroward.session-token';

export function readSessionToken(): string | null {
  try {
    return window.sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function writeSessionToken(token: string): void {
  try {
    window.sessionStorage.setItem(KEY, token);
  } catch {
    // Storage disabled: the session simply cannot survive a reload.
  }
}

export function clearSessionToken(): void {
  try {
    window.sessionStorage.removeItem(KEY);
  } catch {
    // ignore
  }
}
