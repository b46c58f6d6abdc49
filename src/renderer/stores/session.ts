/** The signed-in session of this window, as the host last described it. */
import { create } from 'zustand';
import type { SessionInfo } from '../../shared/ipc.js';
import type { Permission } from '../../shared/roles.js';
import { clearSessionToken, writeSessionToken } from '../api/session-token.js';

interface SessionState {
  session: SessionInfo | null;
  /** Why the last session ended without the person asking (idle expiry, resume failure…); shown on sign-in. */
  endedReason: string | null;
  /** Why the session was locked by the host (idle…); shown on the lock screen. */
  lockReason: string | null;
  /** Replaces the session; `reason` explains a lock that the host pushed. */
  setSession: (session: SessionInfo, reason?: string | null) => void;
  endSession: (reason: string | null) => void;
  /** Forgets the session in memory but keeps the token, e.g. while the store is locked; resume may follow. */
  suspendSession: () => void;
  clearEndedReason: () => void;
}

export const useSession = create<SessionState>()((set) => ({
  session: null,
  endedReason: null,
  lockReason: null,
  setSession: (session, reason = null) => {
    writeSessionToken(session.token);
    set({ session, endedReason: null, lockReason: session.locked ? reason : null });
  },
  endSession: (reason) => {
    clearSessionToken();
    set({ session: null, endedReason: reason, lockReason: null });
  },
  suspendSession: () => set({ session: null, lockReason: null }),
  clearEndedReason: () => set({ endedReason: null }),
}));

export function hasPermission(session: SessionInfo | null, permission: Permission): boolean {
  return !!session && session.permissions.includes(permission);
}

export function usePermission(permission: Permission): boolean {
  return useSession((s) => hasPermission(s.session, permission));
}
