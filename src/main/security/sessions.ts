/**
 * Sessions live in memory only and are bound to one connection (an Electron window or a WebSocket).
 * A session locks itself after idle time and ends at its absolute expiry; both are pushed to the
 * window. After a page reload the page may resume its session with the token, but only from a new
 * connection while the old one is gone: a copied token cannot run beside the original.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { SessionInfo } from '../../shared/ipc.js';
import { ROLE_PERMISSIONS, type Role } from '../../shared/roles.js';
import { NwError } from '../../shared/errors.js';

export interface Session {
  readonly token: string;
  /** Non-secret reference written to the audit ledger. */
  readonly ref: string;
  readonly userId: string;
  readonly username: string;
  displayName: string;
  role: Role;
  connectionId: string | null;
  readonly createdAt: number;
  lastActivity: number;
  readonly expiresAt: number;
  locked: boolean;
  mustChangePassword: boolean;
  breakGlass: { reason: string; until: number } | null;
}

export interface SessionUser {
  id: string;
  username: string;
  displayName: string;
  role: Role;
  mustChangePassword: boolean;
}

export type SessionChangeListener = (connectionId: string, session: Session | null, reason: string) => void;

const EXPIRED_MEMORY = 1000;

export class SessionManager {
  private readonly byToken = new Map<string, Session>();
  /** Tokens that ended recently, so a late caller hears "expired" rather than "unknown". */
  private readonly ended = new Map<string, string>();

  constructor(
    private readonly options: { idleLockMs: number; sessionMs: number; now: () => number },
    private readonly onChange: SessionChangeListener,
  ) {}

  create(user: SessionUser, connectionId: string): Session {
    const previous = this.forConnection(connectionId);
    if (previous) this.end(previous, 'replaced by a new sign-in');
    const token = randomBytes(32).toString('base64url');
    const now = this.options.now();
    const session: Session = {
      token,
      ref: createHash('sha256').update(token).digest('hex').slice(0, 16),
      userId: user.id,
      username: user.username,
      displayName: user.displayName,
      role: user.role,
      connectionId,
      createdAt: now,
      lastActivity: now,
      expiresAt: now + this.options.sessionMs,
      locked: false,
      mustChangePassword: user.mustChangePassword,
      breakGlass: null,
    };
    this.byToken.set(token, session);
    return session;
  }

  /** The session bound to this connection, after applying idle lock, expiry and break-glass end. */
  forConnection(connectionId: string): Session | null {
    for (const session of this.byToken.values()) {
      if (session.connectionId === connectionId) return this.refresh(session) ? session : null;
    }
    return null;
  }

  resume(token: string, connectionId: string, liveConnections: ReadonlySet<string>): Session {
    const session = this.byToken.get(token);
    if (!session) {
      const why = this.ended.get(token);
      if (why) throw new NwError('session-expired', `This session has ended (${why}). Sign in again.`);
      throw new NwError('unauthenticated', 'Unknown session. Sign in again.');
    }
    if (!this.refresh(session)) throw new NwError('session-expired', 'This session has ended. Sign in again.');
    if (session.connectionId && session.connectionId !== connectionId && liveConnections.has(session.connectionId)) {
      throw new NwError('forbidden', 'This session is open in another window.');
    }
    const previous = this.forConnection(connectionId);
    if (previous && previous !== session) this.end(previous, 'replaced by a resumed session');
    session.connectionId = connectionId;
    // A resumed session comes back locked: whoever reloaded the page proves who they are again.
    session.locked = true;
    return session;
  }

  connectionClosed(connectionId: string): void {
    for (const session of this.byToken.values()) if (session.connectionId === connectionId) session.connectionId = null;
  }

  touch(session: Session): void {
    session.lastActivity = this.options.now();
  }

  lock(session: Session, reason: string): void {
    if (session.locked) return;
    session.locked = true;
    if (session.connectionId) this.onChange(session.connectionId, session, reason);
  }

  unlock(session: Session): void {
    session.locked = false;
    session.lastActivity = this.options.now();
  }

  end(session: Session, reason: string): void {
    this.byToken.delete(session.token);
    this.ended.set(session.token, reason);
    if (this.ended.size > EXPIRED_MEMORY) this.ended.delete(this.ended.keys().next().value as string);
    if (session.connectionId) this.onChange(session.connectionId, null, reason);
  }

  /** Ends every session of a user (account disabled, role changed, password reset). */
  endForUser(userId: string, reason: string): void {
    for (const session of [...this.byToken.values()]) if (session.userId === userId) this.end(session, reason);
  }

  startBreakGlass(session: Session, reason: string, minutes: number): void {
    session.breakGlass = { reason, until: this.options.now() + minutes * 60_000 };
  }

  /** Applies time-based changes to every session; called on a timer so windows hear of them. */
  tick(): void {
    for (const session of [...this.byToken.values()]) this.refresh(session);
  }

  /** Returns false when the session has ended. */
  private refresh(session: Session): boolean {
    const now = this.options.now();
    if (now >= session.expiresAt) {
      this.end(session, 'the session reached its maximum length');
      return false;
    }
    if (session.breakGlass && now >= session.breakGlass.until) {
      session.breakGlass = null;
      if (session.connectionId) this.onChange(session.connectionId, session, 'break-glass access expired');
    }
    if (!session.locked && now - session.lastActivity >= this.options.idleLockMs) this.lock(session, 'locked after inactivity');
    return true;
  }

  info(session: Session): SessionInfo {
    return {
      token: session.token,
      user: { id: session.userId, username: session.username, displayName: session.displayName, role: session.role },
      permissions: [...ROLE_PERMISSIONS[session.role]],
      locked: session.locked,
      idleLockMs: this.options.idleLockMs,
      expiresAt: new Date(session.expiresAt).toISOString(),
      mustChangePassword: session.mustChangePassword,
      breakGlass: session.breakGlass ? { reason: session.breakGlass.reason, until: new Date(session.breakGlass.until).toISOString() } : null,
    };
  }
}
