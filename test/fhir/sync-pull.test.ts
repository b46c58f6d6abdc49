/**
 * Incremental pull (issue 10 item 4) against the real loopback FHIR server (@medplum/fhir-router +
 * MemoryRepository): paging by _lastUpdated, resources sharing one lastUpdated across a page boundary,
 * a write committed late with an earlier timestamp, pulled Patients as local records (restriction kept),
 * nothing pulled ever queued, a local unsent change against a newer server copy. Expected values come
 * from what the test wrote to the server, never from the engine's own report alone.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Practitioner, Resource } from '@medplum/fhirtypes';
import { startLoopbackFhirServer, type LoopbackFhirServer } from '../support/fhir-server.js';
import { openTestStore } from '../support/sync-rig.js';
import type { Db } from '../../src/main/store/database.js';
import { Outbox } from '../../src/main/store/outbox.js';
import { PatientsRepository } from '../../src/main/patients/patients-repo.js';
import { FhirSyncEngine } from '../../src/main/fhir/sync/sync-engine.js';
import { resolveServers, syncServer, syncServerSettingsSchema, type PullSettings } from '../../src/main/fhir/sync/settings.js';
import { FhirValidator } from '../../src/main/fhir/validation.js';
import { PULL_TYPES } from '../../src/main/fhir/sync/pull-store.js';
import { toFhirPatient } from '../../src/main/fhir/resources.js';

const validator = new FhirValidator();
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  while (closers.length) await closers.pop()!();
});

async function server(): Promise<LoopbackFhirServer> {
  const s = await startLoopbackFhirServer();
  closers.push(() => s.close());
  return s;
}

interface Station {
  db: Db;
  outbox: Outbox;
  patients: PatientsRepository;
  engine: FhirSyncEngine;
  logs: string[];
}

function station(servers: { name: string; baseUrl: string }[], pull: Partial<PullSettings> = {}): Station {
  const { db } = openTestStore();
  const now = () => new Date();
  const logs: string[] = [];
  const patients = new PatientsRepository(db, now);
  const engine = new FhirSyncEngine({
    db,
    servers: servers.map((s) => syncServer({ ...s, timeoutMs: 5_000, pull: { resourceTypes: PULL_TYPES, pageSize: 100, overlapMs: 5_000, ...pull } })),
    validator,
    now,
    pulledPatients: patients,
    log: (m) => logs.push(m),
  });
  closers.push(async () => {
    await engine.close();
    db.close();
  });
  return { db, outbox: new Outbox(db, now), patients, engine, logs };
}

function practitioner(id: string, family: string): Practitioner & { id: string } {
  return { resourceType: 'Practitioner', id, name: [{ family, given: ['Dr'] }], active: true };
}

/** A write by someone else, straight to the server over HTTP. */
async function remotePut(s: LoopbackFhirServer, resource: Resource & { id: string }): Promise<string> {
  const response = await fetch(`${s.baseUrl}/${resource.resourceType}/${resource.id}`, { method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(resource) });
  expect(response.status).toBeLessThan(300);
  return ((await response.json()) as Resource).meta!.versionId!;
}

async function remoteBatch(s: LoopbackFhirServer, resources: (Resource & { id: string })[]): Promise<void> {
  const bundle = { resourceType: 'Bundle', type: 'batch', entry: resources.map((resource) => ({ resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } })) };
  const response = await fetch(s.baseUrl, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) });
  expect(response.status).toBe(200);
}

const outboxRows = (db: Db) => (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
const storedIds = (db: Db, type: string) => (db.prepare('SELECT resource_id FROM fhir_resources WHERE resource_type = ? ORDER BY resource_id').all(type) as { resource_id: string }[]).map((r) => r.resource_id);

describe('pull: paging and the cursor', () => {
  it('pulls 250 Practitioners in pages of 7 (keyset on _lastUpdated), each once, and a second pull re-reads only the overlap', async () => {
    const s = await server();
    const written = Array.from({ length: 250 }, (_, i) => practitioner(`dr-${String(i).padStart(3, '0')}`, `Family${i}`));
    for (let i = 0; i < written.length; i += 50) await remoteBatch(s, written.slice(i, i + 50));
    const ws = station([{ name: 'hospital', baseUrl: s.baseUrl }], { pageSize: 7, resourceTypes: ['Practitioner'] });

    const started = performance.now();
    const [first] = await ws.engine.pull();
    console.log(`pull of 250 in pages of 7: ${first!.requests} requests, ${Math.round(performance.now() - started)} ms`);
    const types = first!.types[0]!;
    expect(first!.state).toBe('done');
    expect(types.applied).toBe(250);
    // Paged: more than one request. Not necessarily ⌈250 / 7⌉: a page that holds only resources already
    // applied (a millisecond shared by more than a page, as batch writes on a fast machine make) doubles
    // the next page's _count (pull.ts), so fewer, larger pages can follow.
    expect(types.requests).toBeGreaterThan(1);
    expect(storedIds(ws.db, 'Practitioner')).toEqual(written.map((p) => p.id).sort());
    for (const p of written.slice(0, 5)) expect(ws.engine.pulledResources.get('Practitioner', p.id)!.resource.name?.[0]?.family).toBe(p.name![0]!.family);
    expect(outboxRows(ws.db)).toBe(0);

    // Nothing changed on the server: the overlap window's resources come back, recognised by version.
    const [second] = await ws.engine.pull();
    expect(second!.types[0]!.applied).toBe(0);
    // All 250 were written seconds ago, inside the 5 s overlap: each is re-read and recognised once.
    expect(second!.types[0]!.known).toBe(250);
    // One changed remotely: only it is applied.
    await remotePut(s, practitioner('dr-042', 'Renamed'));
    const [third] = await ws.engine.pull();
    expect(third!.types[0]!.applied).toBe(1);
    expect(ws.engine.pulledResources.get('Practitioner', 'dr-042')!.resource.name?.[0]?.family).toBe('Renamed');
    expect(outboxRows(ws.db)).toBe(0);
  });

  it('resources sharing one lastUpdated split across pages are each applied exactly once', async () => {
    const s = await server();
    const t1 = Date.parse('2026-03-01T08:00:00.000Z');
    // Five at one instant and five at the next millisecond, written on the server's own clock (frozen).
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t1);
    for (let i = 0; i < 5; i++) await s.repo.updateResource(practitioner(`a${i}`, `A${i}`));
    vi.setSystemTime(t1 + 1);
    for (let i = 0; i < 5; i++) await s.repo.updateResource(practitioner(`b${i}`, `B${i}`));
    vi.useRealTimers();
    const instants = ['a0', 'a4', 'b0', 'b4'].map((id) => s.repo.current('Practitioner', id)!.meta!.lastUpdated);
    expect(instants).toEqual([new Date(t1).toISOString(), new Date(t1).toISOString(), new Date(t1 + 1).toISOString(), new Date(t1 + 1).toISOString()]);

    const ws = station([{ name: 'hospital', baseUrl: s.baseUrl }], { pageSize: 3, resourceTypes: ['Practitioner'] });
    const [result] = await ws.engine.pull();
    expect(result!.types[0]!.error).toBeNull();
    expect(result!.types[0]!.applied).toBe(10);
    expect(storedIds(ws.db, 'Practitioner')).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1', 'b2', 'b3', 'b4']);
    expect(ws.engine.pullStatus()[0]!.types.find((t) => t.resourceType === 'Practitioner')!.lastUpdated).toBe(new Date(t1 + 1).toISOString());
  });

  it('a write the server stamped earlier than the cursor (late commit, skewed clock) is seen inside the overlap window, and missed without it', async () => {
    const s = await server();
    const t = Date.parse('2026-03-01T09:00:00.000Z');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t);
    await s.repo.updateResource(practitioner('first', 'First'));
    vi.useRealTimers();
    const withOverlap = station([{ name: 'hospital', baseUrl: s.baseUrl }], { overlapMs: 5_000, resourceTypes: ['Practitioner'] });
    const without = station([{ name: 'hospital', baseUrl: s.baseUrl }], { overlapMs: 0, resourceTypes: ['Practitioner'] });
    await withOverlap.engine.pull();
    await without.engine.pull();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t - 2_000);
    await s.repo.updateResource(practitioner('late', 'Late'));
    vi.useRealTimers();
    await withOverlap.engine.pull();
    await without.engine.pull();
    expect(storedIds(withOverlap.db, 'Practitioner')).toEqual(['first', 'late']);
    expect(storedIds(without.db, 'Practitioner')).toEqual(['first']);
  });

  it('an unreachable server: a clear error for the server, the other types not tried, nothing applied, the process goes on', async () => {
    const s = await server();
    await remoteBatch(s, [practitioner('x1', 'X')]);
    const ws = station([{ name: 'hospital', baseUrl: s.baseUrl }], { resourceTypes: ['Practitioner', 'Location'] });
    await s.close();
    const [result] = await ws.engine.pull();
    expect(result!.state).toBe('failed');
    expect(result!.error).toMatch(/Practitioner: GET Practitioner\?.*cannot reach/);
    expect(result!.types).toHaveLength(1);
    expect(storedIds(ws.db, 'Practitioner')).toEqual([]);
    expect(ws.engine.pullStatus()[0]!.types[0]!.lastError).toMatch(/cannot reach/);
  });
});

describe('pull: merge rules', () => {
  it('a pulled Patient becomes a local record, restricted when the server labels it, is not queued, and a restriction is never lifted by a pull', async () => {
    const s = await server();
    const labelled = {
      resourceType: 'Patient' as const,
      id: 'pat-r',
      meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] },
      identifier: [{ system: 'urn:neuroward:mrn', value: 'MRN-R1' }],
      name: [{ use: 'official' as const, family: 'Hidden', given: ['Vera'] }],
      gender: 'female' as const,
      birthDate: '1961-02-03',
      telecom: [{ system: 'phone' as const, value: '+41 00 000 00 00' }],
    };
    const plain = { resourceType: 'Patient' as const, id: 'pat-p', identifier: [{ system: 'urn:neuroward:mrn', value: 'MRN-P1' }], name: [{ family: 'Open', given: ['Otto'] }], gender: 'male' as const, birthDate: '1970-05-06' };
    const noMrn = { resourceType: 'Patient' as const, id: 'pat-x', identifier: [{ system: 'urn:other:mrn', value: '77' }], name: [{ family: 'Elsewhere', given: ['Eve'] }], gender: 'female' as const, birthDate: '1980-01-01' };
    const versionR = await remotePut(s, labelled);
    await remotePut(s, plain);
    await remotePut(s, noMrn);
    const ws = station([{ name: 'hospital', baseUrl: s.baseUrl }], { resourceTypes: ['Patient'] });

    const [result] = await ws.engine.pull();
    expect(result!.types[0]).toMatchObject({ applied: 2, refused: 1 });
    expect(result!.messages.join('\n')).toMatch(/Patient\/pat-x: .*urn:neuroward:mrn/);
    expect(ws.patients.get('pat-r')).toMatchObject({ mrn: 'MRN-R1', familyName: 'Hidden', givenName: 'Vera', birthDate: '1961-02-03', sex: 'female', restricted: true });
    expect(ws.patients.get('pat-p')).toMatchObject({ mrn: 'MRN-P1', restricted: false });
    expect(ws.patients.get('pat-x')).toBeNull();
    // A name search without the right to see restricted records does not reveal the pulled restricted one.
    expect(ws.patients.search('Hidden', 10, false)).toEqual([]);
    expect(outboxRows(ws.db)).toBe(0);
    const version = ws.db.prepare(`SELECT version_id FROM fhir_sync_versions WHERE server = 'hospital' AND resource_type = 'Patient' AND resource_id = 'pat-r'`).get() as { version_id: string };
    expect(version.version_id).toBe(versionR);

    // The server drops the label (and renames): the name follows, the restriction stays.
    await remotePut(s, { ...labelled, meta: {}, name: [{ use: 'official', family: 'Renamed', given: ['Vera'] }] });
    await ws.engine.pull();
    expect(ws.patients.get('pat-r')).toMatchObject({ familyName: 'Renamed', restricted: true, version: 2 });
    // A push pass finds nothing to send: what was pulled is not echoed.
    const report = await ws.engine.runOnce();
    expect(report.servers[0]!.sent).toBe(0);
    expect(s.repo.versions('Patient', 'pat-r')).toHaveLength(2);
    expect(outboxRows(ws.db)).toBe(0);
  });

  it('a pulled Patient edited here and pushed, then set back on the server to its first content: the local record follows the server', async () => {
    const s = await server();
    const first = { resourceType: 'Patient' as const, id: 'pat-e', identifier: [{ system: 'urn:neuroward:mrn', value: 'MRN-E1' }], name: [{ use: 'official' as const, family: 'First', given: ['Ed'] }], gender: 'male' as const, birthDate: '1950-07-08' };
    await remotePut(s, first);
    const ws = station([{ name: 'hospital', baseUrl: s.baseUrl }], { resourceTypes: ['Patient'] });
    await ws.engine.pull();
    ws.db.transaction(() => {
      const edited = ws.patients.replaceDemographics('pat-e', { mrn: 'MRN-E1', givenName: 'Ed', familyName: 'EditedHere', birthDate: '1950-07-08', sex: 'male' });
      ws.outbox.enqueue('update', toFhirPatient(edited));
    })();
    const pushed = await ws.engine.runOnce();
    expect(pushed.servers[0]).toMatchObject({ sent: 1, conflicts: 0 });
    expect((s.repo.current('Patient', 'pat-e') as typeof first).name[0]!.family).toBe('EditedHere');
    await remotePut(s, first);
    const [pulled] = await ws.engine.pull();
    expect(pulled!.types[0]!.applied).toBe(1);
    expect(ws.patients.get('pat-e')?.familyName).toBe('First');
    expect(ws.engine.status()[0]!.pending).toBe(0);
  });

  it('records the pulled version as confirmed: a later local edit goes out with If-Match of it and is accepted', async () => {
    const s = await server();
    await remotePut(s, practitioner('dr-1', 'Before'));
    const ws = station([{ name: 'hospital', baseUrl: s.baseUrl }], { resourceTypes: ['Practitioner'] });
    await ws.engine.pull();
    ws.db.transaction(() => ws.engine.pulledResources.saveLocal(practitioner('dr-1', 'EditedHere'), ws.outbox))();
    const report = await ws.engine.runOnce();
    expect(report.servers[0]).toMatchObject({ sent: 1, conflicts: 0 });
    expect(s.repo.versions('Practitioner', 'dr-1').map((v) => (v.resource as Practitioner).name?.[0]?.family)).toEqual(['Before', 'EditedHere']);
    // Its own write comes back by pull: recognised, not applied, not queued.
    expect(report.pulls[0]!.types[0]).toMatchObject({ applied: 0 });
    expect(outboxRows(ws.db)).toBe(1);
    expect(ws.engine.status()[0]!.pending).toBe(0);
  });

  it('a local change not yet sent meets a newer server copy: a conflict with base, local and remote, never an overwrite', async () => {
    const s = await server();
    await remotePut(s, practitioner('dr-2', 'Base'));
    const ws = station([{ name: 'hospital', baseUrl: s.baseUrl }], { resourceTypes: ['Practitioner'] });
    await ws.engine.pull();
    ws.db.transaction(() => ws.engine.pulledResources.saveLocal(practitioner('dr-2', 'Mine'), ws.outbox))();
    const theirs = await remotePut(s, practitioner('dr-2', 'Theirs'));

    const [result] = await ws.engine.pull();
    expect(result!.types[0]).toMatchObject({ applied: 0, conflicts: 1 });
    expect(ws.engine.pulledResources.get('Practitioner', 'dr-2')!.resource.name?.[0]?.family).toBe('Mine');
    const [conflict] = ws.engine.conflicts({ status: 'open' });
    expect(conflict).toMatchObject({ resourceType: 'Practitioner', resourceId: 'dr-2', remoteVersionId: theirs });
    expect((JSON.parse(conflict!.baseJson!) as Practitioner).name?.[0]?.family).toBe('Base');
    expect((JSON.parse(conflict!.localJson!) as Practitioner).name?.[0]?.family).toBe('Mine');
    expect((JSON.parse(conflict!.remoteJson!) as Practitioner).name?.[0]?.family).toBe('Theirs');

    // The push then parks the local change in the conflict: the server keeps theirs, the outbox drains.
    const report = await ws.engine.runOnce();
    expect(report.servers[0]!.sent).toBe(0);
    expect(ws.engine.status()[0]).toMatchObject({ pending: 0, openConflicts: 1 });
    expect(s.repo.versions('Practitioner', 'dr-2').map((v) => (v.resource as Practitioner).name?.[0]?.family)).toEqual(['Base', 'Theirs']);
    // Keep mine writes over the version the person saw.
    const resolution = await ws.engine.resolveConflict(conflict!.id, 'keep-mine', 'tester');
    expect(resolution.status).toBe('resolved');
    expect((s.repo.current('Practitioner', 'dr-2') as Practitioner).name?.[0]?.family).toBe('Mine');
  });
});

describe('pull: settings and servers that answer wrongly', () => {
  it('by default pulls the seven types a server receives; false pulls nothing; an explicit list wins', () => {
    const parse = (over: Record<string, unknown>) => resolveServers([syncServerSettingsSchema.parse({ name: 'x', baseUrl: 'https://fhir.example.org/r4', ...over })], {})[0]!.pull;
    expect(parse({})?.resourceTypes).toEqual(['Patient', 'Practitioner', 'PractitionerRole', 'Location', 'Appointment', 'Schedule', 'Slot']);
    expect(parse({ resourceTypes: ['Observation', 'Patient', 'Slot'] })?.resourceTypes).toEqual(['Patient', 'Slot']);
    expect(parse({ resourceTypes: ['Observation'] })).toBeNull();
    expect(parse({ pull: false })).toBeNull();
    expect(parse({ pull: { resourceTypes: ['Appointment'], pageSize: 500 } })).toEqual({ resourceTypes: ['Appointment'], pageSize: 500, overlapMs: 5_000 });
    expect(() => parse({ pull: { resourceTypes: ['Observation'] } })).toThrow();
  });

  /** Not a FHIR server implementation: an HTTP endpoint that answers every search with a fixed, faulty page (bad input, issue 10 item 9). */
  async function faultyEndpoint(page: unknown): Promise<string> {
    const endpoint = http.createServer((_req, res) => {
      const text = JSON.stringify(page);
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', () => resolve()));
    closers.push(() => new Promise<void>((resolve) => endpoint.close(() => resolve())));
    return `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/fhir`;
  }
  const entry = (id: string, lastUpdated: string) => ({ resource: { ...practitioner(id, id), meta: { versionId: '1', lastUpdated } } });

  it('a page not sorted by _lastUpdated, of another type, or not a searchset: a clear error for that type, nothing applied, the cursor unmoved', async () => {
    const unsorted = await faultyEndpoint({ resourceType: 'Bundle', type: 'searchset', entry: [entry('u1', '2026-03-01T10:00:00.000Z'), entry('u2', '2026-03-01T09:00:00.000Z')] });
    const html = await faultyEndpoint({ resourceType: 'OperationOutcome', issue: [] });
    const ws = station(
      [
        { name: 'unsorted', baseUrl: unsorted },
        { name: 'not-a-bundle', baseUrl: html },
      ],
      { resourceTypes: ['Practitioner', 'Slot'] },
    );
    const [bad, notBundle] = await ws.engine.pull();
    expect(bad!.state).toBe('partial');
    expect(bad!.types.map((t) => t.error)).toEqual([
      expect.stringMatching(/^Practitioner: the server ignored _sort=_lastUpdated \(Practitioner\/u2 after Practitioner\/u1\)/),
      expect.stringMatching(/^Slot: the search for Slot returned a Practitioner/),
    ]);
    expect(notBundle!.types[0]!.error).toMatch(/instead of a searchset Bundle/);
    expect(storedIds(ws.db, 'Practitioner')).toEqual([]);
    expect(ws.engine.pullStatus().flatMap((s) => s.types.map((t) => t.lastUpdated))).toEqual([null, null, null, null]);
  });
});
