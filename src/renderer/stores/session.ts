/** The signed-in session of this window, as the host last described it. */
import { create } from 'zustand';
import type { SessionInfo } from '../../shared/ipc.js';
import type { Permission } from '../../shared/roles.js';
import { clearSessionToken, writeSessionToken } from '../api/session-token.js';

interface SessionState {
  session: SessionInfo | null;
  /** Why the last session ended without the person asking (idle expiry, resume failure…); shown on sign-in. */
  endedReason: string | null;
  setSession: (session: SessionInfo) => void;
  endSession: (reason: string | null) => void;
  clearEndedReason: () => void;
}

export const useSession = create<SessionState>()((set) => ({
  session: null,
  endedReason: null,
  setSession: (session) => {
    writeSessionToken(session.token);
    set({ session, endedReason: null });
  },
  endSession: (reason) => {
    clearSessionToken();
    set({ session: null, endedReason: reason });
  },
  clearEndedReason: () => set({ endedReason: null }),
}));

export function hasPermission(session: SessionInfo | null, permission: Permission): boolean {
  return !!session && session.permissions.includes(permission);
}

export function usePermission(permission: Permission): boolean {
  return useSession((s) => hasPermission(s.session, permission));
}
