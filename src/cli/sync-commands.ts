/**
 * `neuroward sync status` and `neuroward sync run`: the FHIR sync engine on the app's store, with the
 * app's configured servers. Loaded by neuroward.ts only when one of them runs.
 *
 * `sync run` makes one pass (retry times ignored, as "retry now" on the Sync screen does): push, then
 * pull, per server. Exit codes: 0 every server drained (and pulled) and the pass made no new conflict or
 * dead letter; 1 a server failed or still has entries to retry, its pull failed, or the pass stored a
 * conflict or a dead letter (each needs a person); 2 (from
 * neuroward.ts) no server configured, a bad config or a store that does not open.
 */
import os from 'node:os';
import type { AppConfig } from '../main/app/config.js';
import { FhirSyncEngine, type ServerSyncStatus, type SyncRunReport } from '../main/fhir/sync/sync-engine.js';
import type { ServerPassResult } from '../main/fhir/sync/server-sync.js';
import type { ServerPullResult } from '../main/fhir/sync/pull.js';
import { passSucceeded } from '../main/fhir/sync/run-outcome.js';
import type { SyncServer } from '../main/fhir/sync/settings.js';
import { FhirValidator } from '../main/fhir/validation.js';
import { PatientsRepository } from '../main/patients/patients-repo.js';
import { AuditLedger } from '../main/security/audit-ledger.js';
import type { StoreService } from '../main/store/store-service.js';
import { NwError } from '../shared/errors.js';
import { openStore } from './store-commands.js';

/** One server as `sync status` shows it. */
export interface SyncStatusLine extends ServerSyncStatus {
  routing: '*' | readonly string[];
  auth: SyncServer['auth']['kind'];
}

function statusLines(engine: FhirSyncEngine, servers: readonly SyncServer[]): SyncStatusLine[] {
  return engine.status().map((s) => {
    const server = servers.find((x) => x.name === s.name)!;
    return { ...s, routing: server.resourceTypes, auth: server.auth.kind };
  });
}

function printStatus(lines: readonly SyncStatusLine[]): void {
  for (const s of lines) {
    console.log(`${s.name}  ${s.baseUrl}`);
    console.log(`  routing       ${s.routing === '*' ? 'every resource type' : s.routing.join(', ')}   (auth: ${s.auth})`);
    console.log(`  pending       ${s.pending}${s.inDoubt ? ` (${s.inDoubt} in doubt: read back before they are resent)` : ''}`);
    console.log(`  last success  ${s.lastSuccessAt ?? 'never'}`);
    console.log(`  last error    ${s.lastError ? `${s.lastErrorAt ?? ''} ${s.lastError}`.trim() : 'none'}${s.consecutiveFailures > 1 ? ` (${s.consecutiveFailures} failures in a row)` : ''}`);
    console.log(`  next attempt  ${s.nextAttemptAt ?? (s.pending ? 'now' : 'when a change is queued')}`);
    console.log(`  conflicts     ${s.openConflicts} open`);
    console.log(`  dead letters  ${s.openDeadLetters} open`);
  }
}

function connection(): string {
  return `cli:${os.userInfo().username}@${os.hostname()}`;
}

async function withEngine<T>(config: AppConfig, work: (engine: FhirSyncEngine, store: StoreService) => Promise<T>): Promise<T> {
  const store = await openStore(config);
  try {
    // As the app composes it (app.ts): pulled Patients become local records, never queued back out.
    const now = () => new Date();
    const engine = new FhirSyncEngine({ db: store.db, servers: config.fhirServers, validator: new FhirValidator(), now, pulledPatients: new PatientsRepository(store.db, now) });
    try {
      return await work(engine, store);
    } finally {
      await engine.close();
    }
  } finally {
    store.close();
  }
}

export async function syncStatus(config: AppConfig, json: boolean): Promise<number> {
  return withEngine(config, async (engine, store) => {
    const lines = statusLines(engine, config.fhirServers);
    const queued = (store.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
    const ledger = new AuditLedger(store.db, () => new Date());
    store.transaction(() => ledger.append({ actor: null, connection: connection(), action: 'sync.status', outcome: 'success', detail: { via: 'neuroward sync status', servers: lines.length } }));
    if (json) console.log(JSON.stringify({ servers: lines, outboxRows: queued }, null, 2));
    else if (lines.length === 0) console.log(`no FHIR servers configured (setting "fhir.servers"): ${queued} change${queued === 1 ? '' : 's'} wait in the outbox`);
    else printStatus(lines);
    return 0;
  });
}

function describePull(pull: ServerPullResult | undefined): string {
  if (!pull || (pull.state === 'skipped' && !pull.error)) return '';
  if (pull.state === 'skipped') return '\n  pull: skipped';
  const counts = [`${pull.applied} applied`, pull.conflicts ? `${pull.conflicts} conflict(s)` : '', `${pull.requests} request(s)`].filter(Boolean).join(', ');
  return `\n  pull: ${pull.state}: ${counts}${pull.error ? `\n  pull error: ${pull.error}` : ''}`;
}

function describePass(r: ServerPassResult): string {
  const counts = [`${r.sent} sent`, r.adopted ? `${r.adopted} already there` : '', r.unchanged ? `${r.unchanged} unchanged` : '', r.conflicts ? `${r.conflicts} new conflict(s)` : '', r.deadLetters ? `${r.deadLetters} new dead letter(s)` : '', `${r.requests} request(s)`].filter(Boolean).join(', ');
  const verdict = passSucceeded(r, undefined) ? 'ok' : r.state === 'drained' ? 'NEEDS A PERSON' : r.state.toUpperCase();
  return `${r.server}: ${verdict}: ${counts}${r.error ? `\n  error: ${r.error}` : ''}${!passSucceeded(r, undefined) && r.nextAttemptAt ? `\n  next attempt ${r.nextAttemptAt}` : ''}`;
}

export async function syncRun(config: AppConfig, json: boolean): Promise<number> {
  if (config.fhirServers.length === 0) throw new NwError('bad-request', 'no FHIR servers are configured (setting "fhir.servers"): nothing to sync to.');
  return withEngine(config, async (engine, store) => {
    let report: SyncRunReport;
    const ledger = new AuditLedger(store.db, () => new Date());
    try {
      report = await engine.runOnce({ force: true });
    } catch (error) {
      store.transaction(() => ledger.append({ actor: null, connection: connection(), action: 'sync.run', outcome: 'error', detail: { via: 'neuroward sync run', error: (error as Error).message } }));
      throw error;
    }
    const pullOf = (server: string) => report.pulls.find((p) => p.server === server);
    const ok = report.servers.every((r) => passSucceeded(r, pullOf(r.server)));
    store.transaction(() =>
      ledger.append({
        actor: null,
        connection: connection(),
        action: 'sync.run',
        outcome: ok ? 'success' : 'error',
        detail: {
          via: 'neuroward sync run',
          retired: report.retired,
          servers: report.servers.map((r) => ({ server: r.server, state: r.state, sent: r.sent, adopted: r.adopted, conflicts: r.conflicts, deadLetters: r.deadLetters, error: r.error, pull: pullOf(r.server)?.state ?? null, pulled: pullOf(r.server)?.applied ?? 0 })),
        },
      }),
    );
    const lines = statusLines(engine, config.fhirServers);
    if (json) console.log(JSON.stringify({ ok, servers: report.servers, pulls: report.pulls, retired: report.retired, pruned: report.pruned, status: lines }, null, 2));
    else {
      for (const r of report.servers) console.log(`${describePass(r)}${describePull(pullOf(r.server))}`);
      const pending = lines.reduce((sum, s) => sum + s.pending, 0);
      console.log(`${ok ? 'all servers drained' : 'not everything went through'}; ${pending} change${pending === 1 ? '' : 's'} still pending, ${report.retired} outbox row${report.retired === 1 ? '' : 's'} retired`);
    }
    return ok ? 0 : 1;
  });
}
