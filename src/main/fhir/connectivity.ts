/**
 * Is a FHIR server reachable? Probes each configured server's capability statement (GET /metadata)
 * on an interval; the workstation is "online" when at least one answers. With no server configured it
 * is simply offline and keeps everything in the outbox.
 */
import type { Connectivity } from '../../shared/ipc.js';
import type { AppConfig } from '../app/config.js';

type ServerState = Connectivity['servers'][number];

export class ConnectivityMonitor {
  private readonly servers: ServerState[];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: Pick<AppConfig, 'fhirServers'>,
    private readonly onChange: (snapshot: Omit<Connectivity, 'outboxPending'>) => void,
    private readonly options: { intervalMs: number; timeoutMs: number } = { intervalMs: 30_000, timeoutMs: 5_000 },
  ) {
    this.servers = config.fhirServers.map((s) => ({ name: s.name, baseUrl: s.baseUrl, reachable: null, lastCheckedAt: null }));
  }

  snapshot(): Omit<Connectivity, 'outboxPending'> {
    return { online: this.servers.some((s) => s.reachable === true), servers: this.servers.map((s) => ({ ...s })) };
  }

  start(): void {
    if (this.servers.length === 0 || this.timer) return;
    void this.probeAll();
    this.timer = setInterval(() => void this.probeAll(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async probeAll(): Promise<void> {
    const before = JSON.stringify(this.snapshot().servers.map((s) => s.reachable));
    await Promise.all(
      this.servers.map(async (server, i) => {
        const token = this.config.fhirServers[i]?.tokenEnv ? process.env[this.config.fhirServers[i]!.tokenEnv!] : undefined;
        try {
          const response = await fetch(new URL('metadata', server.baseUrl.endsWith('/') ? server.baseUrl : `${server.baseUrl}/`), {
            headers: { accept: 'application/fhir+json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
            signal: AbortSignal.timeout(this.options.timeoutMs),
          });
          server.reachable = response.ok;
          await response.body?.cancel();
        } catch {
          server.reachable = false;
        }
        server.lastCheckedAt = new Date().toISOString();
      }),
    );
    if (JSON.stringify(this.snapshot().servers.map((s) => s.reachable)) !== before) this.onChange(this.snapshot());
  }
}
