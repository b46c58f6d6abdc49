/**
 * No echo loop (issue 10 item 4): two workstations (two stores, two engines), two real loopback FHIR
 * servers, each workstation pushing to and pulling from both. After rounds of edits on each side, every
 * server holds each resource's content once per real change (its version chain is counted against the
 * test's own count of the changes it made), both outboxes hold exactly the changes made on that
 * workstation and drain to zero and stay there, and both workstations hold the same copies as the servers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Appointment, Practitioner, Resource } from '@medplum/fhirtypes';
import { startLoopbackFhirServer, type LoopbackFhirServer } from '../support/fhir-server.js';
import { openTestStore } from '../support/sync-rig.js';
import type { Db } from '../../src/main/store/database.js';
import { Outbox } from '../../src/main/store/outbox.js';
import { PatientsRepository } from '../../src/main/patients/patients-repo.js';
import { FhirSyncEngine } from '../../src/main/fhir/sync/sync-engine.js';
import { syncServer } from '../../src/main/fhir/sync/settings.js';
import { FhirValidator } from '../../src/main/fhir/validation.js';
import { PULL_TYPES, type StoredResourceType } from '../../src/main/fhir/sync/pull-store.js';
import { toFhirPatient } from '../../src/main/fhir/resources.js';

const validator = new FhirValidator();
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

interface Workstation {
  name: string;
  db: Db;
  outbox: Outbox;
  patients: PatientsRepository;
  engine: FhirSyncEngine;
  /** Changes this workstation made (each one outbox row). */
  changesMade: number;
}

function workstation(name: string, servers: LoopbackFhirServer[]): Workstation {
  const { db } = openTestStore();
  const now = () => new Date();
  const patients = new PatientsRepository(db, now);
  const engine = new FhirSyncEngine({
    db,
    servers: servers.map((s, i) => syncServer({ name: `server-${i + 1}`, baseUrl: s.baseUrl, timeoutMs: 5_000, pull: { resourceTypes: PULL_TYPES, pageSize: 50, overlapMs: 5_000 } })),
    validator,
    now,
    pulledPatients: patients,
  });
  closers.push(async () => {
    await engine.close();
    db.close();
  });
  return { name, db, outbox: new Outbox(db, now), patients, engine, changesMade: 0 };
}

/** What a real change is, counted by the test: resource key → number of changes made to it. */
const changes = new Map<string, number>();

function save(ws: Workstation, resource: (Practitioner | Appointment) & { id: string }): void {
  ws.db.transaction(() => ws.engine.pulledResources.saveLocal(resource as never, ws.outbox))();
  ws.changesMade += 1;
  changes.set(`${resource.resourceType}/${resource.id}`, (changes.get(`${resource.resourceType}/${resource.id}`) ?? 0) + 1);
}

function admit(ws: Workstation, given: string, family: string): string {
  let id = '';
  ws.db.transaction(() => {
    const patient = ws.patients.create({ givenName: given, familyName: family, birthDate: '1975-04-05', sex: 'female', restricted: false, synthetic: true });
    ws.outbox.enqueue('create', toFhirPatient(patient));
    id = patient.id;
  })();
  ws.changesMade += 1;
  changes.set(`Patient/${id}`, 1);
  return id;
}

const doctor = (id: string, family: string, given: string): Practitioner & { id: string } => ({ resourceType: 'Practitioner', id, active: true, name: [{ family, given: [given] }] });
const appointment = (id: string, patientId: string, practitionerId: string, status: Appointment['status'], comment: string): Appointment & { id: string } => ({
  resourceType: 'Appointment',
  id,
  status,
  comment,
  start: '2026-03-02T09:00:00Z',
  end: '2026-03-02T09:30:00Z',
  participant: [
    { actor: { reference: `Patient/${patientId}` }, status: 'accepted' },
    { actor: { reference: `Practitioner/${practitionerId}` }, status: 'accepted' },
  ],
});

/** Content without what the servers assign. */
function comparable(resource: Resource | null | undefined): string {
  if (!resource) return 'null';
  const copy = structuredClone(resource) as Resource & { meta?: Record<string, unknown> };
  if (copy.meta) {
    delete copy.meta.versionId;
    delete copy.meta.lastUpdated;
    if (Object.keys(copy.meta).length === 0) delete copy.meta;
  }
  const canonical = (v: unknown): string =>
    Array.isArray(v) ? `[${v.map(canonical).join(',')}]` : v && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}` : JSON.stringify(v);
  return canonical(copy);
}

async function syncAll(stations: Workstation[]): Promise<void> {
  for (const ws of stations) {
    const report = await ws.engine.runOnce();
    for (const s of report.servers) expect(s.state, `${ws.name} → ${s.server}: ${s.error ?? ''}`).toBe('drained');
    for (const p of report.pulls) expect(p.state, `${ws.name} ← ${p.server}: ${p.error ?? ''}`).toBe('done');
  }
}

const outboxRows = (db: Db) => (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;

describe('pull: two workstations, two servers', () => {
  it('every server holds each real change once, the outboxes drain and stay empty, and both workstations converge', async () => {
    const servers = [await startLoopbackFhirServer(), await startLoopbackFhirServer()];
    for (const s of servers) closers.push(() => s.close());
    const a = workstation('A', servers);
    const b = workstation('B', servers);
    changes.clear();

    // Round 0: each side creates its own.
    const p1 = admit(a, 'Ada', 'North');
    const p2 = admit(b, 'Bea', 'South');
    save(a, doctor('dr-a', 'Alder', 'Anna'));
    save(b, doctor('dr-b', 'Birch', 'Ben'));
    save(a, appointment('ap-1', p1, 'dr-a', 'proposed', 'first visit'));
    await syncAll([a, b, a, b]);

    // Rounds 1-3: each edits what the other made, and its own; always on the newest copy it holds.
    for (let round = 1; round <= 3; round++) {
      const bHolds = b.engine.pulledResources.get('Practitioner', 'dr-a')!.resource;
      save(b, { ...bHolds, name: [{ family: `Alder-${round}`, given: ['Anna'] }] });
      const aHolds = a.engine.pulledResources.get('Practitioner', 'dr-b')!.resource;
      save(a, { ...aHolds, telecom: [{ system: 'phone', value: `+41 00 000 00 0${round}` }] });
      const apHeldByB = b.engine.pulledResources.get('Appointment', 'ap-1')!.resource;
      save(b, { ...apHeldByB, comment: `round ${round} (B)`, status: round === 3 ? 'booked' : 'pending' });
      await syncAll([a, b, a]);
      save(a, appointment('ap-1', p1, 'dr-a', round === 3 ? 'booked' : 'pending', `round ${round} (A), after B`));
      await syncAll([a, b]);
    }
    await syncAll([b, a, b]);

    // Several more passes on both: nothing moves any more (no ping-pong).
    const rowsBefore = [outboxRows(a.db), outboxRows(b.db)];
    const versionsBefore = servers.map((s) => [...s.repo.allChains().values()].reduce((n, chain) => n + chain.length, 0));
    await syncAll([a, b, a, b, a, b]);
    expect([outboxRows(a.db), outboxRows(b.db)]).toEqual(rowsBefore);
    expect(servers.map((s) => [...s.repo.allChains().values()].reduce((n, chain) => n + chain.length, 0))).toEqual(versionsBefore);

    // Each outbox holds exactly the changes made there (nothing pulled was queued), and is drained.
    expect(outboxRows(a.db)).toBe(a.changesMade);
    expect(outboxRows(b.db)).toBe(b.changesMade);
    for (const ws of [a, b]) for (const s of ws.engine.status()) expect(s, `${ws.name}/${s.name}`).toMatchObject({ pending: 0, inDoubt: 0, openConflicts: 0, openDeadLetters: 0 });

    // Each server: one version per real change of each resource, and nothing else.
    for (const [i, s] of servers.entries()) {
      const chains = s.repo.allChains();
      expect([...chains.keys()].sort(), `server-${i + 1} resources`).toEqual([...changes.keys()].sort());
      for (const [key, count] of changes) expect(chains.get(key)!.length, `server-${i + 1} ${key}`).toBe(count);
    }
    expect(changes.get('Appointment/ap-1')).toBe(7);
    expect(changes.get('Practitioner/dr-a')).toBe(4);

    // Convergence: both servers and both workstations hold the same copy of everything.
    for (const key of changes.keys()) {
      const [type, id] = key.split('/') as [string, string];
      const onServers = servers.map((s) => comparable(s.repo.current(type, id)));
      expect(onServers[1], key).toBe(onServers[0]);
      if (type === 'Patient') {
        const [pa, pb] = [a.patients.get(id), b.patients.get(id)];
        expect(pa && { ...pa, version: 0, createdAt: '', updatedAt: '' }, key).toEqual(pb && { ...pb, version: 0, createdAt: '', updatedAt: '' });
        expect(comparable(toFhirPatient(pa!))).toBe(onServers[0]);
      } else {
        for (const ws of [a, b]) expect(comparable(ws.engine.pulledResources.get(type as StoredResourceType, id)!.resource), `${ws.name} ${key}`).toBe(onServers[0]);
      }
    }
    expect(b.patients.get(p1)?.familyName).toBe('North');
    expect(a.patients.get(p2)?.familyName).toBe('South');
  });

  it('the same resource edited on both workstations at once: one edit lands, the other is a conflict on each server; take theirs, written back, converges without a new version', async () => {
    const servers = [await startLoopbackFhirServer(), await startLoopbackFhirServer()];
    for (const s of servers) closers.push(() => s.close());
    const a = workstation('A', servers);
    const b = workstation('B', servers);
    changes.clear();
    save(a, doctor('dr-c', 'Cedar', 'Cleo'));
    await syncAll([a, b]);
    save(a, { ...a.engine.pulledResources.get('Practitioner', 'dr-c')!.resource, name: [{ family: 'Cedar-A', given: ['Cleo'] }] });
    // B edits its copy before it has seen A's edit: concurrent, so it must not land over A's.
    b.db.transaction(() => b.engine.pulledResources.saveLocal({ ...b.engine.pulledResources.get('Practitioner', 'dr-c')!.resource, name: [{ family: 'Cedar-B', given: ['Cleo'] }] }, b.outbox))();
    b.changesMade += 1;
    await a.engine.runOnce();
    const report = await b.engine.runOnce();
    expect(report.servers.map((s) => s.conflicts)).toEqual([1, 1]);
    // B's copy is untouched by its pull (the unsent change lost at the push is in the conflicts).
    expect(b.engine.pulledResources.get('Practitioner', 'dr-c')!.resource.name?.[0]?.family).toBe('Cedar-B');
    for (const conflict of b.engine.conflicts({ status: 'open' })) {
      const resolution = await b.engine.resolveConflict(conflict.id, 'take-theirs', 'tester');
      expect(resolution.status).toBe('resolved');
      if (resolution.status === 'resolved' && resolution.remote) {
        b.db.transaction(() => b.engine.pulledResources.saveLocal(resolution.remote as Practitioner & { id: string }, b.outbox))();
        b.changesMade += 1;
      }
    }
    await syncAll([b, a, b, a]);
    for (const s of servers) expect(s.repo.versions('Practitioner', 'dr-c').map((v) => (v.resource as Practitioner).name?.[0]?.family)).toEqual(['Cedar', 'Cedar-A']);
    for (const ws of [a, b]) {
      expect(ws.engine.pulledResources.get('Practitioner', 'dr-c')!.resource.name?.[0]?.family).toBe('Cedar-A');
      for (const st of ws.engine.status()) expect(st).toMatchObject({ pending: 0, openConflicts: 0 });
      expect(outboxRows(ws.db)).toBe(ws.changesMade);
    }
  });
});
