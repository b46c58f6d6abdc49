/**
 * The one door for every IPC call, used by both hosts. In order: size → channel → store state →
 * session → permission → schema → handler → response schema. A refusal touches no domain data and is
 * written to the audit ledger; a synchronous handler runs in one transaction with its audit entry.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { channels, isChannelName, type ChannelDef, type ChannelName, type ParsedRequestOf, type ResponseOf } from '../../shared/ipc.js';
import { NwError, type Envelope } from '../../shared/errors.js';
import { roleHasPermission } from '../../shared/roles.js';
import type { AuditActor, AuditInput, AuditLedger } from '../security/audit-ledger.js';
import type { RefusalAudit } from '../security/refusal-audit.js';
import type { Session, SessionManager } from '../security/sessions.js';
import type { StoreService } from '../store/store-service.js';
import type { Connection } from './types.js';

/** Extra facts a handler adds to the channel's audit entry. */
export interface AuditFacts {
  entityType?: string | null;
  entityId?: string | null;
  patientId?: string | null;
  breakGlass?: boolean;
  detail?: Record<string, unknown> | null;
  /** Overrides the actor, e.g. for a sign-in, where the session does not exist yet. */
  actor?: AuditActor | null;
}

export interface HandlerContext {
  readonly connection: Connection;
  /** The caller's session; guaranteed for every channel that is not `public`. */
  readonly session: Session | null;
  /** Filled by the handler; written with the success (or refusal) entry. */
  readonly audit: AuditFacts;
  /** For async handlers: runs `fn` in a transaction together with the channel's success entry. */
  commit<T>(fn: () => T): T;
  /** Runs `fn` (e.g. count a failed sign-in) in a transaction with a refusal entry, then returns the error to throw. */
  refuse(error: NwError, fn?: () => void): NwError;
  /** The handler wrote its own entries inside the transaction of its change (first-run setup). */
  markAudited(): void;
}

export function requireSession(ctx: HandlerContext): Session {
  if (!ctx.session) throw new Error('handler of a session channel called without a session');
  return ctx.session;
}

type SyncHandler<C extends ChannelName> = (request: ParsedRequestOf<C>, ctx: HandlerContext) => ResponseOf<C>;
/** Async handlers do slow work (scrypt, files) first, then write through ctx.commit. */
export interface AsyncHandler<C extends ChannelName> {
  async: (request: ParsedRequestOf<C>, ctx: HandlerContext) => Promise<ResponseOf<C>>;
}
export type Handler<C extends ChannelName> = SyncHandler<C> | AsyncHandler<C>;
export type HandlerTable = { [C in ChannelName]: Handler<C> };

/** Calls that are not a person at work: they must not hold off the idle lock. */
const PASSIVE_CHANNELS: ReadonlySet<ChannelName> = new Set(['app.status', 'system.connectivity', 'imaging.jobs']);
/** The only things a user who must change their password may do first. */
const BEFORE_PASSWORD_CHANGE: ReadonlySet<ChannelName> = new Set(['app.status', 'auth.changePassword', 'auth.signOut', 'auth.lock', 'auth.unlock', 'auth.touch', 'auth.resume', 'auth.signIn']);

/** What the gate itself says, so tests can tell a refusal at the door from a handler's own answer. */
export const GATE = {
  noSession: 'Sign in first.',
  locked: 'The session is locked: enter your password to continue.',
  rolePrefix: 'Your role (',
} as const;

const REFUSAL_CODES = new Set(['bad-request', 'payload-too-large', 'unknown-channel', 'unauthenticated', 'session-expired', 'session-locked', 'forbidden', 'account-locked', 'rate-limited', 'wrong-passphrase']);

export interface DispatcherDeps {
  store: StoreService;
  sessions: SessionManager;
  ledger: () => AuditLedger;
  handlers: HandlerTable;
  /** Refusals the gate writes go through the per-source budget, so junk cannot flood the ledger. */
  refusals: RefusalAudit;
  log: (message: string) => void;
}

/**
 * A channel name as text for messages and logs, whatever the caller sent: never calls a method of the
 * value (a JSON object can carry "toString": "x"), never longer than 100 characters.
 */
export function describeChannel(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 100));
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a${typeof value === 'object' || typeof value === 'undefined' ? 'n' : ''} ${typeof value}`;
}

export class Dispatcher {
  constructor(private readonly deps: DispatcherDeps) {}

  /**
   * Never throws and never rejects, whatever JSON value arrives in any field: the envelope is either the
   * call's result or a clean error. The last line of defence below catches what the inner one cannot.
   */
  async dispatch(connection: Connection, channelName: unknown, payload: unknown, rawBytes: number): Promise<Envelope<unknown>> {
    try {
      return await this.run(connection, channelName, payload, rawBytes);
    } catch (error) {
      const reference = randomUUID().slice(0, 8);
      try {
        this.deps.log(`dispatch failed outside its own error handling [reference ${reference}]: ${error instanceof Error ? (error.stack ?? error.message) : typeof error}`);
      } catch {
        // Nothing more can be done for this call; the envelope below still goes out.
      }
      return { ok: false, error: { code: 'internal', message: `NeuroWard could not complete this action; nothing was changed (reference ${reference}).` } };
    }
  }

  private async run(connection: Connection, channelName: unknown, payload: unknown, rawBytes: number): Promise<Envelope<unknown>> {
    const audit: AuditFacts = {};
    let session: Session | null = null;
    let audited = false;
    const name = isChannelName(channelName) ? channelName : null;
    const def: ChannelDef | null = name ? channels[name] : null;

    const actorOf = (s: Session | null): AuditActor | null => (s ? { userId: s.userId, username: s.username, role: s.role } : null);
    const entry = (outcome: AuditInput['outcome'], outcomeDetail: string | null): AuditInput => ({
      actor: audit.actor !== undefined ? audit.actor : actorOf(session),
      sessionRef: session?.ref ?? null,
      connection: connection.id,
      action: def?.audit ?? (name ? `${name}` : 'ipc.unknown-channel'),
      channel: name ?? (typeof channelName === 'string' ? channelName.slice(0, 100) : null),
      outcome,
      outcomeDetail,
      entityType: audit.entityType ?? null,
      entityId: audit.entityId ?? null,
      patientId: audit.patientId ?? null,
      breakGlass: audit.breakGlass ?? Boolean(session?.breakGlass),
      detail: audit.detail ?? null,
    });
    const ctx: HandlerContext = {
      connection,
      get session() {
        return session;
      },
      audit,
      commit: <T>(fn: () => T): T =>
        this.deps.store.transaction(() => {
          const result = fn();
          if (def?.audit) this.deps.ledger().append(entry('success', null));
          audited = true;
          return result;
        }),
      refuse: (error: NwError, fn?: () => void): NwError => {
        if (this.deps.store.ready) {
          this.deps.store.transaction(() => {
            fn?.();
            this.deps.ledger().append(entry('denied', `${error.code}: ${error.message}`));
          });
          audited = true;
        }
        return error;
      },
      markAudited: () => {
        audited = true;
      },
    };

    try {
      if (!Number.isFinite(rawBytes) || rawBytes > (def?.maxRequestBytes ?? 16 * 1024)) {
        throw new NwError('payload-too-large', `Request too large (${rawBytes} bytes; the limit for this call is ${def?.maxRequestBytes ?? 16 * 1024}).`);
      }
      if (!name || !def) throw new NwError('unknown-channel', `Unknown channel ${describeChannel(channelName)}.`);
      if (def.requiresLaunchSecret && !connection.launchVerified) {
        throw new NwError('forbidden', 'This must come from the window the workstation opened: use the address it printed at start, which carries this launch\'s key.');
      }
      if (def.needsStore) void this.deps.store.db; // throws store-locked / store-uninitialized / store-corrupted

      session = this.deps.store.ready ? this.deps.sessions.forConnection(connection.id) : null;
      this.authorise(name, def, session);

      const parsed = def.request.safeParse(payload ?? {});
      if (!parsed.success) {
        throw new NwError(
          'bad-request',
          `Invalid request for ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(request)'} ${i.message}`).join('; ')}.`,
          parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
        );
      }
      if (session && !PASSIVE_CHANNELS.has(name) && !session.locked) this.deps.sessions.touch(session);

      const handler = this.deps.handlers[name] as Handler<ChannelName>;
      let value: unknown;
      if (typeof handler === 'function') {
        const run = () => (handler as (r: unknown, c: HandlerContext) => unknown)(parsed.data, ctx);
        // Before the store opens there is nothing to write and no ledger: only store-free channels get here.
        value = this.deps.store.ready ? ctx.commit(run) : run();
      } else {
        value = await handler.async(parsed.data as never, ctx);
        // An async handler that wrote nothing (a pure read) is audited on its way out.
        if (!audited && def.audit && this.deps.store.ready) this.deps.store.transaction(() => this.deps.ledger().append(entry('success', null)));
      }
      return { ok: true, value: (def.response as z.ZodType).parse(value) };
    } catch (error) {
      const nwError = error instanceof NwError ? error : null;
      const wire = nwError
        ? nwError.toWire()
        : { code: 'internal' as const, message: `NeuroWard could not complete this action; nothing was changed (reference ${randomUUID().slice(0, 8)}).` };
      if (!nwError) this.deps.log(`internal error on ${describeChannel(channelName)} [${wire.message}]: ${error instanceof Error ? (error.stack ?? error.message) : typeof error}`);
      if (!audited) {
        const outcome = nwError && REFUSAL_CODES.has(nwError.code) ? 'denied' : 'error';
        // Written now when the store is open, else when it opens (a wrong store passphrase, say).
        this.deps.refusals.record(connection.source, entry(outcome, `${wire.code}: ${wire.message}`));
      }
      return { ok: false, error: wire };
    }
  }

  private authorise(name: ChannelName, def: ChannelDef, session: Session | null): void {
    const permission = def.permission;
    if (permission === 'public') return;
    if (!session) throw new NwError('unauthenticated', GATE.noSession);
    if (permission === 'session') return;
    if (session.locked) throw new NwError('session-locked', GATE.locked);
    if (session.mustChangePassword && !BEFORE_PASSWORD_CHANGE.has(name)) throw new NwError('forbidden', 'Change your password before continuing.');
    if (permission === 'active-session') return;
    if (permission === 'patients:read-restricted') {
      if (!session.breakGlass) throw new NwError('forbidden', 'Restricted: needs break-glass access.');
      return;
    }
    if (!roleHasPermission(session.role, permission)) {
      throw new NwError('forbidden', `${GATE.rolePrefix}${session.role}) does not allow this (${permission}).`);
    }
  }
}
