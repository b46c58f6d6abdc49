/**
 * Is each FHIR server reachable? Read from what the sync engine last saw of it (its passes are the
 * probes: a request that got a FHIR answer means reachable, a link failure means not), rather than from
 * a separate `/metadata` poll, which some servers (Medplum's router among them) do not serve and which
 * would say "offline" while Bundles go through. The workstation is "online" when at least one is reachable.
 * With no server configured it is simply offline and keeps everything in the outbox.
 */
import type { Connectivity } from '../../shared/ipc.js';

type ServerState = Connectivity['servers'][number];

/** What the engine knows of one server (a subset of ServerSyncStatus). */
export interface ServerLinkFacts {
  name: string;
  baseUrl: string;
  lastAttemptAt: string | null;
  lastSuccessAt: string | null;
  lastErrorAt: string | null;
  lastError: string | null;
}

/**
 * Null before the first request; else reachable unless the server's current error (cleared by the next
 * pass that goes through) says no FHIR answer came back: link down, timeout, an HTML page instead of
 * FHIR. An HTTP error with an OperationOutcome is an answer: reachable, and the error is shown beside it.
 */
export function reachableFrom(facts: ServerLinkFacts): boolean | null {
  if (!facts.lastAttemptAt) return null;
  return !/cannot reach|no answer within|not FHIR JSON|is not FHIR/i.test(facts.lastError ?? '');
}

export class ConnectivityMonitor {
  private servers: ServerState[];

  constructor(
    servers: readonly { name: string; baseUrl: string }[],
    private readonly onChange: (snapshot: Omit<Connectivity, 'outboxPending'>) => void,
  ) {
    this.servers = servers.map((s) => ({ name: s.name, baseUrl: s.baseUrl, reachable: null, lastCheckedAt: null }));
  }

  snapshot(): Omit<Connectivity, 'outboxPending'> {
    return { online: this.servers.some((s) => s.reachable === true), servers: this.servers.map((s) => ({ ...s })) };
  }

  /** Takes the engine's view after a pass; tells listeners when a server's reachability changed. */
  update(facts: readonly ServerLinkFacts[]): boolean {
    const before = JSON.stringify(this.servers.map((s) => s.reachable));
    this.servers = this.servers.map((server) => {
      const fact = facts.find((f) => f.name === server.name);
      return fact ? { ...server, reachable: reachableFrom(fact), lastCheckedAt: fact.lastAttemptAt } : server;
    });
    const changed = JSON.stringify(this.servers.map((s) => s.reachable)) !== before;
    if (changed) this.onChange(this.snapshot());
    return changed;
  }
}
