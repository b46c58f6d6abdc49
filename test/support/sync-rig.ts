/**
 * Sync test rig: a fresh encrypted store (as store.test.ts / audit-ledger.test.ts open one), the real
 * loopback FHIR server, the fault proxy in front of it, a clock the test moves, and the test's OWN
 * record of what the local side holds (`LocalTruth`), written as the test enqueues changes. The final
 * check compares the server against that record, never against what the engine says it did.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Resource } from '@medplum/fhirtypes';
import { openEncryptedDatabase, type Db } from '../../src/main/store/database.js';
import { applyMigrations } from '../../src/main/store/migrations.js';
import { Outbox } from '../../src/main/store/outbox.js';
import { FhirSyncEngine, type SyncRunReport } from '../../src/main/fhir/sync/sync-engine.js';
import { syncServer, type SyncPolicy, type SyncServer } from '../../src/main/fhir/sync/settings.js';
import { FhirValidator } from '../../src/main/fhir/validation.js';
import { startLoopbackFhirServer, type LoopbackFhirServer } from './fhir-server.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { tempDir } from './harness.js';
import { mulberry32 } from '../../src/shared/random.js';

/** Deterministic PRNG: every random fault point is reproducible from its seed. */
export const seededRandom = mulberry32;

export function openTestStore(file = path.join(tempDir('nw-sync-'), 'sync.db'), key = randomBytes(32)): { db: Db; file: string; key: Buffer } {
  const db = openEncryptedDatabase(file, key, { create: true });
  applyMigrations(db, () => new Date().toISOString());
  return { db, file, key };
}

export interface TestClock {
  now: number;
  advance(ms: number): void;
  date(): Date;
}

export function testClock(start = Date.parse('2026-03-01T08:00:00.000Z')): TestClock {
  const clock: TestClock = {
    now: start,
    advance(ms) {
      clock.now += ms;
    },
    date: () => new Date(clock.now),
  };
  return clock;
}

/** The server's copy without what the server assigns, to compare with ours. */
function comparable(resource: Resource): string {
  const copy = structuredClone(resource) as Resource & { meta?: Record<string, unknown> };
  if (copy.meta) {
    delete copy.meta.versionId;
    delete copy.meta.lastUpdated;
    if (Object.keys(copy.meta).length === 0) delete copy.meta;
  }
  return canonical(copy);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * What the workstation holds, as the test wrote it: per `Type/id` the newest content (null = deleted),
 * and every distinct content it ever queued (a server version must be one of those or a remote edit).
 */
export class LocalTruth {
  readonly latest = new Map<string, Resource | null>();
  readonly queuedVersions = new Map<string, Set<string>>();
  readonly remoteEdits = new Map<string, Set<string>>();
  queued = 0;

  constructor(
    private readonly outbox: Pick<Outbox, 'enqueue'>,
    private readonly db: Db,
  ) {}

  /** Queues one resource change in its own transaction, as the app does with a local change. */
  put(resource: Resource & { id: string }, operation: 'create' | 'update' = 'update'): void {
    this.db.transaction(() => this.outbox.enqueue(operation, resource))();
    this.note(resource);
  }

  delete(resourceType: string, id: string): void {
    this.db.transaction(() => this.outbox.enqueue('delete', { resourceType, id }))();
    this.latest.set(`${resourceType}/${id}`, null);
    this.queued += 1;
  }

  /** Queues a transaction Bundle of client-id PUTs (the vitals minute bundle shape). */
  putBundle(id: string, resources: (Resource & { id: string })[]): void {
    const bundle = { resourceType: 'Bundle' as const, id, type: 'transaction' as const, entry: resources.map((resource) => ({ resource, request: { method: 'PUT' as const, url: `${resource.resourceType}/${resource.id}` } })) };
    this.db.transaction(() => this.outbox.enqueue('create', bundle))();
    for (const r of resources) this.note(r);
  }

  /** A person took the server's copy: the app writes it to the local record and queues it (sync-engine.ts resolveConflict). */
  adoptRemote(resource: Resource & { id: string }): void {
    this.put(resource);
  }

  noteRemoteEdit(resource: Resource): void {
    const key = `${resource.resourceType}/${resource.id}`;
    let set = this.remoteEdits.get(key);
    if (!set) this.remoteEdits.set(key, (set = new Set()));
    set.add(comparable(resource));
  }

  private note(resource: Resource & { id: string }): void {
    const key = `${resource.resourceType}/${resource.id}`;
    this.latest.set(key, resource);
    let set = this.queuedVersions.get(key);
    if (!set) this.queuedVersions.set(key, (set = new Set()));
    set.add(comparable(resource));
    this.queued += 1;
  }
}

export interface ServerComparison {
  /** Local resources (newest content) the server holds exactly. */
  matching: number;
  /** Local resources the server lacks or holds with other content (or still holds though deleted locally). */
  lost: string[];
  /** Versions written twice in a row with the same content (a resend that wrote again), by resource. */
  duplicates: string[];
  /** Resources on the server the workstation never had. */
  extra: string[];
  /** Server versions whose content is neither a local version nor a remote edit. */
  foreign: string[];
  /** Versions the server stored, in total. */
  versions: number;
}

/** Compares the server with the test's own record (see LocalTruth). */
export function compareServer(server: LoopbackFhirServer, truth: LocalTruth, only?: (key: string) => boolean): ServerComparison {
  const result: ServerComparison = { matching: 0, lost: [], duplicates: [], extra: [], foreign: [], versions: 0 };
  const chains = server.repo.allChains();
  for (const [key, expected] of truth.latest) {
    if (only && !only(key)) continue;
    const [type, id] = key.split('/') as [string, string];
    const current = server.repo.current(type, id);
    if (expected === null ? current === null : current !== null && comparable(current) === comparable(expected)) result.matching += 1;
    else result.lost.push(key);
  }
  for (const [key, chain] of chains) {
    if (only && !only(key)) continue;
    if (!truth.latest.has(key)) result.extra.push(key);
    result.versions += chain.filter((v) => !v.deleted).length;
    let previous: string | null = null;
    for (const version of chain) {
      const text = version.resource ? comparable(version.resource) : null;
      if (text !== null && text === previous) result.duplicates.push(key);
      if (text !== null && !truth.queuedVersions.get(key)?.has(text) && !truth.remoteEdits.get(key)?.has(text)) result.foreign.push(key);
      previous = text;
    }
  }
  return result;
}

export interface SyncRig {
  db: Db;
  outbox: Outbox;
  truth: LocalTruth;
  server: LoopbackFhirServer;
  proxy: FaultProxy;
  clock: TestClock;
  logs: string[];
  engine(servers?: Partial<SyncServer>[], policy?: Partial<SyncPolicy>): FhirSyncEngine;
  /** Runs passes, moving the clock to each retry time, until every server drained (or `maxPasses`). */
  drain(engine: FhirSyncEngine, maxPasses?: number): Promise<SyncRunReport[]>;
  close(): Promise<void>;
}

const validator = new FhirValidator();

export async function startSyncRig(options: { seed?: number } = {}): Promise<SyncRig> {
  const { db } = openTestStore();
  const clock = testClock();
  const outbox = new Outbox(db, () => clock.date());
  const server = await startLoopbackFhirServer();
  const proxy = await startFaultProxy(server.baseUrl);
  const logs: string[] = [];
  const engines: FhirSyncEngine[] = [];
  const random = seededRandom(options.seed ?? 1);
  return {
    db,
    outbox,
    truth: new LocalTruth(outbox, db),
    server,
    proxy,
    clock,
    logs,
    engine(servers = [{}], policy = {}) {
      const engine = new FhirSyncEngine({
        db,
        servers: servers.map((s, i) => syncServer({ name: `server-${i + 1}`, baseUrl: proxy.baseUrl, timeoutMs: 2_000, ...s })),
        validator,
        policy: { backoffBaseMs: 1_000, backoffMaxMs: 60_000, ...policy },
        now: () => clock.date(),
        random,
        log: (m) => logs.push(m),
      });
      engines.push(engine);
      return engine;
    },
    async drain(engine, maxPasses = 200) {
      const reports: SyncRunReport[] = [];
      for (let i = 0; i < maxPasses; i++) {
        const report = await engine.runOnce();
        reports.push(report);
        if (report.servers.every((s) => s.state === 'drained')) return reports;
        const dues = engine
          .status()
          .map((s) => (s.nextAttemptAt ? Date.parse(s.nextAttemptAt) : clock.now))
          .filter((t) => t > clock.now);
        clock.now = dues.length ? Math.min(...dues) : clock.now + 1;
      }
      throw new Error(`not drained after ${maxPasses} passes: ${JSON.stringify(engine.status())}`);
    },
    async close() {
      for (const engine of engines) await engine.close();
      await proxy.close();
      await server.close();
      db.close();
    },
  };
}

export const SYNTHETIC_TAG = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HTEST', display: 'test health data' };

export function testPatient(id: string, family: string, version = 1): Resource & { id: string } {
  return {
    resourceType: 'Patient',
    id,
    meta: { versionId: String(version), lastUpdated: new Date(Date.UTC(2026, 2, 1, 8, 0, version)).toISOString(), tag: [SYNTHETIC_TAG] },
    identifier: [{ system: 'urn:neuroward:mrn', value: `MRN-${id}` }],
    name: [{ family, given: ['Test'] }],
    gender: 'female',
    birthDate: '1970-01-01',
  };
}

export function testObservation(id: string, patientId: string, value: number): Resource & { id: string } {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: '2026-03-01T08:00:00Z',
    valueQuantity: { value, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
  };
}
