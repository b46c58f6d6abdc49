/**
 * The sync engine wired into the workstation, over the real dispatcher, against two real FHIR servers
 * (Medplum's router + MemoryRepository on loopback): a configured workstation drains its outbox on its
 * own; the Sync channels' RBAC and audit; a conflict resolved by keep mine, take theirs and merge ends
 * with the server holding the chosen content, the local record matching, and the other server receiving
 * it. Expected contents come from what the test typed (locally) and wrote (on the server), never from
 * the engine's own account.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Patient as FhirPatient } from '@medplum/fhirtypes';
import type { Bundle } from '@medplum/fhirtypes';
import { startLoopbackFhirServer, type LoopbackFhirServer } from '../support/fhir-server.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { connect, setUpWorkstation, STORE_PASSPHRASE, type TestConnection, type Workstation } from '../support/harness.js';
import { createApp } from '../../src/main/app/app.js';
import { syncServer } from '../../src/main/fhir/sync/settings.js';
import type { Patient, SyncConflictView } from '../../src/shared/ipc.js';

let hospital: LoopbackFhirServer;
/** The workstation reaches the hospital's server through this proxy (passing everything unless a test says). */
let hospitalProxy: FaultProxy;
let registry: LoopbackFhirServer;
let ws: Workstation;
let physician: TestConnection;
let nurse: TestConnection;
let admin: TestConnection;

async function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An edit made on the server by someone else (a PUT of the whole resource, as another client would). */
async function editOnServer(server: LoopbackFhirServer, id: string, edit: (p: FhirPatient) => void): Promise<void> {
  const current = server.repo.current('Patient', id) as FhirPatient;
  edit(current);
  const response = await fetch(`${server.baseUrl}/Patient/${id}`, { method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(current) });
  expect(response.status).toBe(200);
}

const serverPatient = (server: LoopbackFhirServer, id: string) => server.repo.current('Patient', id) as FhirPatient | null;

/** A patient registered on the workstation, sent to both servers, then edited on the hospital's server and locally: a conflict. */
async function conflictOver(local: Partial<Pick<Patient, 'givenName' | 'familyName' | 'birthDate' | 'sex'>>, remote: (p: FhirPatient) => void): Promise<{ patient: Patient; conflict: SyncConflictView }> {
  const patient = await physician.ok('patients.create', { givenName: 'Ada', familyName: 'Original', birthDate: '1970-01-01', sex: 'female' });
  await until('the new patient on both servers', () => serverPatient(hospital, patient.id) && serverPatient(registry, patient.id));
  await editOnServer(hospital, patient.id, remote);
  await physician.ok('patients.update', { id: patient.id, version: patient.version, ...local });
  const conflict = await until('the conflict', async () => (await physician.ok('sync.conflicts', { status: 'open' })).conflicts.find((c) => c.resourceId === patient.id));
  return { patient, conflict };
}

beforeAll(async () => {
  hospital = await startLoopbackFhirServer();
  registry = await startLoopbackFhirServer();
  hospitalProxy = await startFaultProxy(hospital.baseUrl);
  ws = await setUpWorkstation({ fhirServers: [syncServer({ name: 'hospital', baseUrl: hospitalProxy.baseUrl }), syncServer({ name: 'registry', baseUrl: registry.baseUrl, resourceTypes: ['Patient'] })] });
  physician = (await ws.signInAs('physician')).connection;
  nurse = (await ws.signInAs('nurse')).connection;
  admin = (await ws.signInAs('admin')).connection;
}, 60_000);
afterAll(async () => {
  await ws?.app.close();
  await hospitalProxy?.close();
  await hospital?.close();
  await registry?.close();
});

describe('a configured workstation', () => {
  it('drains its outbox on its own: every demo patient reaches both servers, the top bar count falls to 0', async () => {
    const local = (await physician.ok('patients.list', { limit: 200 })).patients;
    expect(local.length).toBeGreaterThan(0);
    await until('every local patient on both servers', () => local.every((p) => serverPatient(hospital, p.id) && serverPatient(registry, p.id)));
    for (const p of local.filter((x) => x.name !== null)) expect(serverPatient(hospital, p.id)!.name?.[0]?.family).toBe(p.name!.split(' ').slice(1).join(' '));
    await until('nothing left queued', async () => (await physician.ok('system.connectivity', {})).outboxPending === 0);
    const status = await physician.ok('sync.status', {});
    expect(status).toMatchObject({ configured: true, running: true, outboxPending: 0 });
    expect(status.servers.map((s) => [s.name, s.reachable, s.pending, s.resourceTypes])).toEqual([
      ['hospital', true, 0, '*'],
      ['registry', true, 0, ['Patient']],
    ]);
    // Servers built in code pull nothing (settings.ts): no pull rows.
    expect(status.servers.map((s) => s.pull)).toEqual([[], []]);
    // The top bar learnt it by event, without polling.
    const pushed = physician.events.filter((e) => e.event === 'connectivity.changed').map((e) => e.payload as { outboxPending: number; online: boolean });
    expect(pushed.at(-1)).toMatchObject({ outboxPending: 0, online: true });
  }, 30_000);

  it('sends a new local change soon after it is saved (kicked, not at the next idle pass)', async () => {
    const started = Date.now();
    const patient = await physician.ok('patients.create', { givenName: 'Quick', familyName: 'Sender', birthDate: '1981-02-03', sex: 'male' });
    await until('the patient on the server', () => serverPatient(hospital, patient.id), 10_000);
    // The idle pass comes every 15 s; a kicked one within about a second (0.3–0.4 s here when idle). The
    // bound leaves room for a loaded machine and still fails without the kick.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('conflicts', () => {
  it('shows base, mine and theirs with the differing fields; keep mine writes mine over theirs', async () => {
    const { patient, conflict } = await conflictOver({ familyName: 'Mine' }, (p) => (p.name = [{ use: 'official', family: 'Theirs', given: ['Ada'] }]));
    const fields = Object.fromEntries(conflict.content!.fields.map((f) => [f.field, f]));
    expect(fields.name).toMatchObject({ differs: true, changedByMe: true, changedByThem: true });
    expect(JSON.parse(fields.name!.mine!)[0].family).toBe('Mine');
    expect(JSON.parse(fields.name!.theirs!)[0].family).toBe('Theirs');
    expect(JSON.parse(fields.name!.base!)[0].family).toBe('Original');
    expect(fields.birthDate).toMatchObject({ differs: false });

    const result = await physician.ok('sync.resolveConflict', { id: conflict.id, choice: 'keep-mine' });
    expect(result).toMatchObject({ status: 'resolved', local: null, conflict: { status: 'kept-mine' } });
    expect(serverPatient(hospital, patient.id)!.name?.[0]?.family).toBe('Mine');
    expect((await physician.ok('patients.get', { id: patient.id })).familyName).toBe('Mine');
    await until('the registry holding mine', () => serverPatient(registry, patient.id)?.name?.[0]?.family === 'Mine');
  });

  it('take theirs: the local record and the other server take the server\'s copy; that server is not written again', async () => {
    const { patient, conflict } = await conflictOver({ familyName: 'Mine' }, (p) => {
      p.name = [{ use: 'official', family: 'Theirs', given: ['Adeline'] }];
      p.telecom = [{ system: 'phone', value: '+44 20 7946 0000' }];
    });
    const versionsBefore = hospital.repo.versions('Patient', patient.id).length;
    const result = await physician.ok('sync.resolveConflict', { id: conflict.id, choice: 'take-theirs' });
    expect(result).toMatchObject({ status: 'resolved', conflict: { status: 'took-theirs' }, local: { applied: true } });
    const local = await physician.ok('patients.get', { id: patient.id });
    expect(local).toMatchObject({ familyName: 'Theirs', givenName: 'Adeline', version: patient.version + 2 });
    // The other server receives the hospital's whole copy (telecom too); the hospital skips it (same content).
    await until('the registry holding theirs', () => serverPatient(registry, patient.id)?.telecom?.[0]?.value === '+44 20 7946 0000');
    expect(serverPatient(registry, patient.id)!.name?.[0]?.family).toBe('Theirs');
    await until('nothing queued', async () => (await physician.ok('sync.status', {})).servers.every((s) => s.pending === 0));
    expect(hospital.repo.versions('Patient', patient.id).length).toBe(versionsBefore);
  });

  it('merge by field: the server holds the fields chosen from each side, the local record matches, an unchosen field is refused first', async () => {
    const { patient, conflict } = await conflictOver({ birthDate: '1970-12-31', familyName: 'Mine' }, (p) => {
      p.name = [{ use: 'official', family: 'Theirs', given: ['Ada'] }];
      p.gender = 'other';
    });
    const differing = conflict.content!.fields.filter((f) => f.differs).map((f) => f.field);
    expect(differing.sort()).toEqual(['birthDate', 'gender', 'name']);
    const versionsBefore = hospital.repo.versions('Patient', patient.id).length;

    // Every differing field needs a side: refused before anything reaches the server.
    const refused = await physician.fail('sync.resolveConflict', { id: conflict.id, choice: 'merge', fields: { name: 'theirs', birthDate: 'mine' } });
    expect(refused).toMatchObject({ code: 'bad-request' });
    expect(refused.message).toContain('gender');
    expect(hospital.repo.versions('Patient', patient.id).length).toBe(versionsBefore);

    const result = await physician.ok('sync.resolveConflict', { id: conflict.id, choice: 'merge', fields: { name: 'theirs', birthDate: 'mine', gender: 'mine' } });
    expect(result).toMatchObject({ status: 'resolved', local: { applied: true } });
    const onServer = serverPatient(hospital, patient.id)!;
    expect({ family: onServer.name?.[0]?.family, birthDate: onServer.birthDate, gender: onServer.gender }).toEqual({ family: 'Theirs', birthDate: '1970-12-31', gender: 'female' });
    expect(hospital.repo.versions('Patient', patient.id).length).toBe(versionsBefore + 1);
    expect(await physician.ok('patients.get', { id: patient.id })).toMatchObject({ familyName: 'Theirs', birthDate: '1970-12-31', sex: 'female' });
    await until('the registry holding the merge', () => {
      const r = serverPatient(registry, patient.id);
      return r?.name?.[0]?.family === 'Theirs' && r.birthDate === '1970-12-31' && r.gender === 'female';
    });
    await until('nothing queued', async () => (await physician.ok('sync.status', {})).servers.every((s) => s.pending === 0));
    expect(hospital.repo.versions('Patient', patient.id).length).toBe(versionsBefore + 1);
  });

  it('merge after a further remote edit is a conflict again, never an overwrite', async () => {
    const { patient, conflict } = await conflictOver({ familyName: 'Mine' }, (p) => (p.name = [{ use: 'official', family: 'Theirs', given: ['Ada'] }]));
    await editOnServer(hospital, patient.id, (p) => (p.name = [{ use: 'official', family: 'TheirsAgain', given: ['Ada'] }]));
    const result = await physician.ok('sync.resolveConflict', { id: conflict.id, choice: 'merge', fields: { name: 'mine' } });
    expect(result.status).toBe('conflict-again');
    expect(serverPatient(hospital, patient.id)!.name?.[0]?.family).toBe('TheirsAgain');
    expect(JSON.parse(result.conflict.content!.fields.find((f) => f.field === 'name')!.theirs!)[0].family).toBe('TheirsAgain');
    // Decided again on what is now shown: mine goes over.
    await physician.ok('sync.resolveConflict', { id: conflict.id, choice: 'keep-mine' });
    expect(serverPatient(hospital, patient.id)!.name?.[0]?.family).toBe('Mine');
  });

  it('a nurse sees conflicts but cannot resolve them; the administrator sees no record content; each attempt is audited', async () => {
    const { patient, conflict } = await conflictOver({ familyName: 'Mine' }, (p) => (p.name = [{ use: 'official', family: 'Theirs', given: ['Ada'] }]));
    expect((await nurse.ok('sync.conflicts', { status: 'open' })).conflicts.some((c) => c.id === conflict.id)).toBe(true);
    expect(await nurse.fail('sync.resolveConflict', { id: conflict.id, choice: 'keep-mine' })).toMatchObject({ code: 'forbidden' });
    expect(await nurse.fail('sync.runNow', {})).toMatchObject({ code: 'forbidden' });
    const seenByAdmin = (await admin.ok('sync.conflicts', { status: 'open' })).conflicts.find((c) => c.id === conflict.id)!;
    expect(seenByAdmin.content).toBeNull();
    expect(seenByAdmin.contentWithheld).toMatch(/does not read clinical records/);
    expect(await admin.fail('sync.resolveConflict', { id: conflict.id, choice: 'take-theirs' })).toMatchObject({ code: 'forbidden' });
    // Nothing changed on the server by the refusals.
    expect(serverPatient(hospital, patient.id)!.name?.[0]?.family).toBe('Theirs');
    await physician.ok('sync.resolveConflict', { id: conflict.id, choice: 'take-theirs' });

    const entries = (await admin.ok('audit.list', { action: 'sync.conflict.resolve', limit: 50 })).entries;
    expect(entries.filter((e) => e.entityId === String(conflict.id)).map((e) => [e.actorRole, e.outcome, e.entityType, e.patientId])).toEqual([
      ['physician', 'success', 'SyncConflict', patient.id],
      ['admin', 'denied', 'SyncConflict', patient.id],
    ]);
    // The nurse was refused at the gate, before the request was read: the entry names the channel, not the conflict.
    expect(entries.some((e) => e.actorRole === 'nurse' && e.outcome === 'denied' && e.channel === 'sync.resolveConflict')).toBe(true);
    const runs = (await admin.ok('audit.list', { action: 'sync.run', limit: 10 })).entries;
    expect(runs.some((e) => e.actorRole === 'nurse' && e.outcome === 'denied')).toBe(true);
  });
});

describe('dead letters and run now', () => {
  it('a change the server refuses is a dead letter with its message; requeue (audited) sends it once the server takes it; discard closes one', async () => {
    const refuse = (id: string) =>
      hospitalProxy.setPlan(() => ({
        kind: 'rewrite',
        body: (body) => {
          const target = (body as Bundle | undefined)?.entry?.find((e) => e.request?.url === `Patient/${id}`);
          // The server sees a resource whose id differs from its URL: the real router answers 400 for that entry.
          if (target?.resource) target.resource.id = 'somebody-else';
          return body;
        },
      }));
    const refused = await physician.ok('patients.create', { givenName: 'Dead', familyName: 'Letter', birthDate: '1960-06-06', sex: 'male' });
    refuse(refused.id);
    const letter = await until('the dead letter', async () => (await admin.ok('sync.deadLetters', { status: 'open' })).deadLetters.find((l) => l.resourceId === refused.id));
    expect(letter).toMatchObject({ server: 'hospital', resourceType: 'Patient', httpStatus: 400 });
    expect(letter.message).toContain('Incorrect resource ID');
    // The other server is not held up by it.
    await until('the registry holding it', () => serverPatient(registry, refused.id));
    expect(serverPatient(hospital, refused.id)).toBeNull();
    expect((await admin.ok('sync.status', {})).servers.find((s) => s.name === 'hospital')).toMatchObject({ openDeadLetters: 1, reachable: true });

    expect(await nurse.fail('sync.requeueDeadLetter', { id: letter.id })).toMatchObject({ code: 'forbidden' });
    hospitalProxy.setPlan(() => ({ kind: 'pass' }));
    expect(await admin.ok('sync.requeueDeadLetter', { id: letter.id })).toMatchObject({ id: letter.id, status: 'requeued' });
    await until('the hospital holding it after the requeue', () => serverPatient(hospital, refused.id));
    expect(hospital.repo.versions('Patient', refused.id)).toHaveLength(1);
    expect(registry.repo.versions('Patient', refused.id)).toHaveLength(1);

    const discarded = await physician.ok('patients.create', { givenName: 'Given', familyName: 'Up', birthDate: '1961-07-07', sex: 'female' });
    refuse(discarded.id);
    const second = await until('the second dead letter', async () => (await admin.ok('sync.deadLetters', { status: 'open' })).deadLetters.find((l) => l.resourceId === discarded.id));
    hospitalProxy.setPlan(() => ({ kind: 'pass' }));
    expect(await admin.ok('sync.discardDeadLetter', { id: second.id })).toMatchObject({ status: 'discarded' });
    expect(await admin.fail('sync.discardDeadLetter', { id: second.id })).toMatchObject({ code: 'conflict' });
    const report = await admin.ok('sync.runNow', {});
    expect(report.servers.map((s) => [s.server, s.state])).toEqual([
      ['hospital', 'drained'],
      ['registry', 'drained'],
    ]);
    expect(serverPatient(hospital, discarded.id)).toBeNull();

    const audit = async (action: string) => (await admin.ok('audit.list', { action, limit: 20 })).entries.map((e) => [e.actorRole, e.outcome, e.entityId]);
    expect(await audit('sync.dead-letter.requeue')).toEqual(expect.arrayContaining([['admin', 'success', String(letter.id)], ['nurse', 'denied', null]]));
    expect(await audit('sync.dead-letter.discard')).toEqual(expect.arrayContaining([['admin', 'success', String(second.id)]]));
    expect((await audit('sync.run')).some(([role, outcome]) => role === 'admin' && outcome === 'success')).toBe(true);
  });
});

describe('link down, restart, unlock', () => {
  it('says the server is unreachable and keeps everything queued; after a restart the engine starts at unlock and drains', async () => {
    const server = await startLoopbackFhirServer();
    const proxy = await startFaultProxy(server.baseUrl);
    await proxy.setLinkDown(true);
    const lines: string[] = [];
    const site = await setUpWorkstation({ fhirServers: [syncServer({ name: 'clinic', baseUrl: proxy.baseUrl, timeoutMs: 2_000 })] });
    let app = site.app;
    try {
      const doctor = (await site.signInAs('physician')).connection;
      const down = await until('the failed attempt', async () => {
        const status = await doctor.ok('sync.status', {});
        return status.servers[0]?.lastError ? status : null;
      });
      expect(down.servers[0]).toMatchObject({ name: 'clinic', reachable: false });
      expect(down.servers[0]!.lastError).toContain('cannot reach');
      expect(down.servers[0]!.pending).toBeGreaterThan(0);
      expect(down.outboxPending).toBe(down.servers[0]!.pending);
      expect((await doctor.ok('system.connectivity', {})).online).toBe(false);
      const local = (await doctor.ok('patients.list', { limit: 200 })).patients;
      await app.close();

      await proxy.setLinkDown(false);
      app = await createApp({ config: site.config, host: 'headless', now: () => new Date(site.clock.now), log: (line) => lines.push(line), announce: () => undefined });
      expect(app.startupNotes.join('\n')).toContain(`FHIR server "clinic" ${proxy.baseUrl}: all resource types; batch Bundles of <= 100; auth none`);
      expect(app.startupNotes.join('\n')).toContain('FHIR sync: waits for the store to be opened');
      const door = connect(app);
      expect(await door.fail('sync.status', {})).toMatchObject({ code: 'store-locked' });
      await door.ok('store.unlock', { passphrase: STORE_PASSPHRASE });
      expect(lines).toContain('FHIR sync started: clinic');
      // The retry time the failures set is kept across the restart (it is in the store): let it pass.
      site.clock.advance(16 * 60_000);
      await until('every local patient on the server after the unlock', () => local.every((p) => server.repo.current('Patient', p.id)));
      for (const p of local) expect(server.repo.versions('Patient', p.id)).toHaveLength(1);
    } finally {
      await app.close();
      await proxy.close();
      await server.close();
    }
  }, 60_000);
});
