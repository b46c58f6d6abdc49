/**
 * The ward end to end inside the app: a monitor publishes to the embedded broker, readings are stored,
 * scored and alarmed; nurses' windows get updates; a nurse acknowledges with a reason, audited; a
 * physician puts a patient on NEWS2 SpO2 scale 2, which follows the patient (also across a restart).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlarmView, BedUpdate, BedView, WardBoard } from '../../src/shared/ipc.js';
import { mergeBedUpdate } from '../../src/shared/ward-trend.js';
import { createApp } from '../../src/main/app/app.js';
import { openEncryptedDatabase } from '../../src/main/store/database.js';
import { derivePassphraseKey, readKeyInfo } from '../../src/main/store/keys.js';
import { connect, setUpWorkstation, STORE_PASSPHRASE, type TestConnection, type Workstation } from '../support/harness.js';
import { MonitorFleet, bedRange, connectMonitor, provisionMonitors, writeCredentialsFile, type MonitorSecret } from '../support/monitors.js';

let ws: Workstation;
let nurse: TestConnection;
/** One monitor per bed, each with the credential an administrator created for it (the broker refuses anonymous ones). */
let fleet: MonitorFleet;
const credentials: MonitorSecret[] = [];
let seq = 1;

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function publish(bed: string, vitals: Record<string, unknown>, client?: mqtt.MqttClient): Promise<void> {
  const payload = { v: 1, deviceId: `mon-${bed}`, seq: seq++, ts: new Date().toISOString(), ...vitals };
  const monitor = client ?? (await fleet.client('A', bed));
  await monitor.publishAsync(`ward/A/bed/${bed}/vitals`, JSON.stringify(payload), { qos: 1 });
}

/** The bed as the board shows it once `ready` holds (e.g. its latest reading has arrived). */
function bedWhen(viewer: TestConnection, key: string, ready: (bed: BedView) => boolean, what: string): Promise<BedView> {
  return until(async () => {
    const bed = (await viewer.ok('ward.board', {})).beds.find((b) => b.key === key);
    return bed && ready(bed) ? bed : undefined;
  }, what);
}

/** The audit entries of `action` straight from the encrypted file (the audit view leaves out their detail). */
async function auditDetails(workstation: Workstation, action: string): Promise<{ outcome: string; entity_id: string | null; patient_id: string | null; detail: Record<string, unknown> | null }[]> {
  const key = await derivePassphraseKey(STORE_PASSPHRASE, readKeyInfo(`${workstation.config.dataDir}/neuroward.keyinfo.json`)!);
  const db = openEncryptedDatabase(`${workstation.config.dataDir}/neuroward.db`, key, { create: false });
  try {
    const rows = db.prepare('SELECT outcome, entity_id, patient_id, detail_json FROM audit_log WHERE action = ? ORDER BY seq').all(action) as {
      outcome: string;
      entity_id: string | null;
      patient_id: string | null;
      detail_json: string | null;
    }[];
    return rows.map(({ detail_json, ...row }) => ({ ...row, detail: detail_json ? (JSON.parse(detail_json) as Record<string, unknown>) : null }));
  } finally {
    db.close();
  }
}

/** SpO2 88 % on air, everything else normal: 3 on SpO2 scale 1 (a single parameter at 3), 0 on scale 2. */
const HYPOXIC_ON_AIR = { hr: 72, spo2: 88, rr: 14, tempC: 36.8, sbp: 128, dbp: 76, acvpu: 'A', o2: false };

beforeAll(async () => {
  ws = await setUpWorkstation();
  ({ connection: nurse } = await ws.signInAs('nurse'));
  const url = await until(() => ws.app.vitalsBrokerUrl ?? undefined, 'the embedded broker');
  expect(url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
  const { connection: admin } = await ws.signInAs('admin');
  fleet = new MonitorFleet(
    () => url,
    () => credentials,
    async (ward, bed) => void credentials.push(...(await provisionMonitors(admin, ward, [bed])).monitors),
  );
});
afterAll(async () => {
  await fleet?.end();
  await ws?.app.close();
});

describe('ward monitoring', () => {
  it('stores and scores a stable patient without alarms', async () => {
    await publish('1', { hr: 72, spo2: 98, rr: 14, tempC: 36.8, sbp: 128, dbp: 76, acvpu: 'A', o2: false });
    const board = await until(async () => {
      const b = await nurse.ok('ward.board', {});
      return b.beds.find((x) => x.key === 'A/1' && x.latest) ? b : undefined;
    }, 'bed A/1 on the board');
    const bed = board.beds.find((b) => b.key === 'A/1')!;
    expect(bed.news2).toMatchObject({ aggregate: 0, risk: 'low', complete: true });
    expect(bed.latest).toMatchObject({ hr: 72, spo2: 98 });
    expect(board.alarms.filter((a) => a.bedKey === 'A/1')).toEqual([]);
    expect(board.link.up).toBe(true);
  });

  it('pushes a new high alarm to the screens at once, not with the next 1 s board push', async () => {
    // Five beds: a push that waited for the periodic one would arrive 0–1000 ms after the reading, so
    // all five within 300 ms by chance is a 0.3 % event.
    for (const bed of ['U1', 'U2', 'U3', 'U4', 'U5']) {
      const published = Date.now();
      await publish(bed, { hr: 135, spo2: 89, rr: 28, tempC: 39.4, sbp: 88, dbp: 50, acvpu: 'V', o2: true });
      const pushed = await until(
        () => nurse.events.find((e) => e.event === 'ward.update' && ((e.payload as { alarms: AlarmView[] | null }).alarms ?? []).some((a) => a.bedKey === `A/${bed}` && a.priority === 'high')),
        `the pushed alarm of bed A/${bed}`,
      );
      expect(pushed.at - published, `bed A/${bed}: published → pushed (ms)`).toBeLessThan(300);
      // The alarm's own tile changes with it (its NEWS2 is the alarm's), in the same push.
      const beds = (pushed.payload as { beds: { key: string; news2: { risk: string } | null }[] }).beds;
      expect(beds.find((b) => b.key === `A/${bed}`)?.news2).toMatchObject({ risk: 'high' });
    }
  });

  it("updates carry a bed's whole trend only when more than its newest point changed; a screen that merges them has the board's trend", async () => {
    const key = 'A/T1';
    const from = nurse.events.length;
    const rates = [71, 74, 77, 80];
    for (const hr of rates) {
      await publish('T1', { hr, spo2: 97, rr: 14, tempC: 36.8, sbp: 128, dbp: 76, acvpu: 'A', o2: false });
      // Each reading in its own update (they go out once a second).
      await until(() => nurse.events.slice(from).some((e) => e.event === 'ward.update' && (e.payload as { beds: BedUpdate[] }).beds.some((b) => b.key === key && b.trendNow.hr === hr)) || undefined, `the update with hr ${hr}`);
    }
    const updates = nurse.events
      .slice(from)
      .filter((e) => e.event === 'ward.update')
      .flatMap((e) => (e.payload as { beds: BedUpdate[] }).beds.filter((b) => b.key === key));
    expect(updates.length).toBeGreaterThanOrEqual(rates.length);
    expect(updates[0]!.trend).not.toBeNull(); // a bed the screens have not seen: the whole hour
    // Four updates within a few seconds: at most one minute boundary between them, so some share a minute.
    const sameMinute = updates.filter((u, i) => i > 0 && u.trendMinute === updates[i - 1]!.trendMinute);
    expect(sameMinute.length).toBeGreaterThan(0);
    for (const u of sameMinute) expect(u.trend).toBeNull();
    let merged: BedView | undefined;
    for (const u of updates) {
      const step = mergeBedUpdate(merged, u);
      expect(step.complete).toBe(true);
      merged = step.bed;
    }
    const board = (await nurse.ok('ward.board', {})).beds.find((b) => b.key === key)!;
    expect(merged!.trendMinute).toBe(board.trendMinute);
    expect(merged!.trend).toEqual(board.trend);
    expect(board.trend.hr.at(-1)).toBe(80);
  });

  it('raises a high alarm for a deteriorating patient, pushes it, and audits the acknowledgement', async () => {
    await publish('2', { hr: 135, spo2: 89, rr: 28, tempC: 39.4, sbp: 88, dbp: 50, acvpu: 'V', o2: true });
    const alarm = await until(async () => {
      const b: WardBoard = await nurse.ok('ward.board', {});
      return b.alarms.find((a) => a.bedKey === 'A/2' && a.priority === 'high' && a.condition === 'news2');
    }, 'a high NEWS2 alarm');
    const pushed = await until(() => nurse.events.find((e) => e.event === 'ward.update' && ((e.payload as { alarms: AlarmView[] | null }).alarms ?? []).some((a) => a.id === alarm.id)), 'the pushed alarm');
    expect(pushed).toBeDefined();
    // Updates carry the ingest's counters, so the board's figures stay current without a reload.
    expect((pushed!.payload as { counters: WardBoard['counters'] }).counters.accepted).toBeGreaterThanOrEqual(2);
    const bed = (await nurse.ok('ward.board', {})).beds.find((b) => b.key === 'A/2')!;
    expect(bed.news2).toMatchObject({ risk: 'high' });
    expect(bed.news2!.aggregate).toBeGreaterThanOrEqual(7);

    expect((await nurse.fail('alarms.acknowledge', { alarmId: alarm.id, reason: 'x' })).code).toBe('bad-request');
    const acknowledged = await nurse.ok('alarms.acknowledge', { alarmId: alarm.id, reason: 'at bedside, sepsis pathway started' });
    expect(acknowledged.acknowledged).toMatchObject({ reason: 'at bedside, sepsis pathway started', by: expect.stringContaining('Nurse') });
    expect((await nurse.fail('alarms.acknowledge', { alarmId: alarm.id, reason: 'again please' })).code).toMatch(/conflict|not-found/);

    const { connection: admin } = await ws.signInAs('admin');
    const entries = (await admin.ok('audit.list', { limit: 20, action: 'alarm.acknowledge' })).entries;
    // Newest first: the refused second acknowledgement, the one that silenced the alarm, the too-short reason.
    expect(entries.map((e) => e.outcome)).toEqual(['error', 'success', 'denied']);
    expect(entries[1]).toMatchObject({ actorRole: 'nurse', entityType: 'Alarm', entityId: alarm.id });
  });

  it('counts malformed and impossible messages, stores none of them, and flags the bed', async () => {
    const before = (await nurse.ok('ward.board', {})).counters;
    await (await fleet.client('A', '3')).publishAsync('ward/A/bed/3/vitals', '{ not json', { qos: 1 });
    await publish('3', { hr: 900 });
    const after = await until(async () => {
      const c = (await nurse.ok('ward.board', {})).counters;
      return (c.rejected['malformed-json'] ?? 0) > (before.rejected['malformed-json'] ?? 0) && (c.rejected['impossible-value'] ?? 0) + (c.rejected.schema ?? 0) > (before.rejected['impossible-value'] ?? 0) + (before.rejected.schema ?? 0) ? c : undefined;
    }, 'rejection counters');
    expect(after.accepted).toBe(before.accepted);
    const history = await nurse.ok('ward.bedHistory', { bedKey: 'A/3', minutes: 5 });
    expect(history.readings).toEqual([]);
  });

  it('gives receptionists neither the board nor its updates', async () => {
    const { connection: receptionist } = await ws.signInAs('receptionist');
    expect((await receptionist.fail('ward.board', {})).code).toBe('forbidden');
    await publish('1', { hr: 74, spo2: 97, rr: 15, tempC: 36.9, sbp: 126, dbp: 75, acvpu: 'A', o2: false });
    await new Promise((r) => setTimeout(r, 1500));
    expect(receptionist.events.filter((e) => e.event === 'ward.update')).toEqual([]);
  });

  it('simulate-ward drives a deteriorating ward into high alarms, and its malformed scenario is rejected', async () => {
    const cli = path.resolve('dist/cli/neuroward.js');
    // The simulated monitors connect with the credentials an administrator made for wards S and M.
    const { connection: admin } = await ws.signInAs('admin');
    const file = writeCredentialsFile({ v: 1, broker: ws.app.vitalsBrokerUrl, monitors: [...(await provisionMonitors(admin, 'S', bedRange(3))).monitors, ...(await provisionMonitors(admin, 'M', bedRange(2))).monitors] });
    // Not spawnSync: the broker lives in this process and must keep running meanwhile.
    const run = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [cli, 'simulate-ward', '--broker', ws.app.vitalsBrokerUrl!, ...args], { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) =>
          resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
        );
      });
    const deteriorating = await run('--ward', 'S', '--beds', '3', '--interval', '0.5', '--duration', '3', '--scenario', 'deteriorating', '--drift-seconds', '2', '--credentials', file);
    expect(deteriorating.status, deteriorating.stderr).toBe(0);
    expect(deteriorating.stdout).toMatch(/published \d+ readings/);
    const malformed = await run('--ward', 'M', '--beds', '2', '--interval', '0.2', '--duration', '2', '--scenario', 'malformed', '--credentials', file);
    expect(malformed.stdout).toMatch(/published \d+ readings and \d+ malformed messages/);
    expect((await run('--beds', 'lots')).status).toBe(2);
    // Without credentials the embedded broker refuses the simulator; a bed the file does not cover is a usage error.
    const anonymous = await run('--ward', 'S', '--beds', '1', '--interval', '1', '--duration', '1');
    expect(anonymous.status).toBe(2);
    expect(anonymous.stderr).toMatch(/Not authorized/i);
    const uncovered = await run('--ward', 'S', '--beds', '4', '--interval', '1', '--duration', '1', '--credentials', file);
    expect(uncovered.status).toBe(2);
    expect(uncovered.stderr).toContain('has no credential for bed(s) S/4');
  });

  it('shows the simulated ward on the board', async () => {
    const board = await until(async () => {
      const b = await nurse.ok('ward.board', {});
      return ['S/1', 'S/2', 'S/3'].every((key) => b.alarms.some((a) => a.bedKey === key && a.priority === 'high')) ? b : undefined;
    }, 'high alarms on the simulated beds');
    expect(board.beds.filter((b) => b.ward === 'S').every((b) => b.news2!.risk === 'high')).toBe(true);
    expect((board.counters.rejected['malformed-json'] ?? 0) + (board.counters.rejected.schema ?? 0) + (board.counters.rejected['impossible-value'] ?? 0) + (board.counters.rejected['bad-topic'] ?? 0)).toBeGreaterThan(2);
    const history = await nurse.ok('ward.bedHistory', { bedKey: 'S/1', minutes: 5 });
    expect(history.readings.length).toBeGreaterThan(3);
    expect(history.readings.at(-1)!.news2).toBeGreaterThanOrEqual(7);
  });

  it('keeps sending alarms, without vitals, to a nurse whose screen is locked', async () => {
    const { connection: locked } = await ws.signInAs('nurse');
    await locked.ok('auth.lock', {});
    const from = locked.events.length;
    await publish('9', { hr: 140, spo2: 86, rr: 30, tempC: 39.6, sbp: 85, dbp: 50, acvpu: 'P', o2: true });
    const update = await until(() => {
      const e = locked.events.slice(from).find((x) => x.event === 'ward.update' && ((x.payload as { alarms: AlarmView[] | null }).alarms ?? []).some((a) => a.bedKey === 'A/9'));
      return e?.payload as { beds: unknown[]; alarms: AlarmView[] } | undefined;
    }, 'an alarm update on the locked screen');
    expect(update.beds).toEqual([]);
    expect(locked.events.slice(from).every((x) => x.event !== 'ward.update' || (x.payload as { beds: unknown[] }).beds.length === 0)).toBe(true);
    expect((await locked.fail('ward.board', {})).code).toBe('session-locked');
  });
});

describe('NEWS2 SpO2 scale 2, set per patient by a physician', () => {
  const patientId = randomUUID();
  const patient = `Patient/${patientId}`;
  const reason = 'hypercapnic respiratory failure (COPD), target SpO2 88-92%';
  let physician: TestConnection;
  let physicianName: string;

  beforeAll(async () => {
    const signedIn = await ws.signInAs('physician');
    physician = signedIn.connection;
    physicianName = signedIn.session.user.displayName;
  });

  it('scores SpO2 88 % on air at 3 on scale 1 until a physician sets scale 2 for the patient, with a reason, audited', async () => {
    await publish('20', { ...HYPOXIC_ON_AIR, patient });
    const before = await bedWhen(nurse, 'A/20', (b) => b.latest?.spo2 === 88, 'bed A/20 with SpO2 88');
    expect(before).toMatchObject({ patientRef: patient, spo2Scale: 1, spo2ScaleSetBy: null });
    expect(before.news2).toMatchObject({ aggregate: 3, anySingleThree: true, complete: true });

    // Not a nurse's decision; and the reason is required.
    expect((await nurse.fail('ward.setSpo2Scale', { bedKey: 'A/20', scale: 2, reason })).code).toBe('forbidden');
    expect((await physician.fail('ward.setSpo2Scale', { bedKey: 'A/20', scale: 2, reason: ' x ' })).code).toBe('bad-request');

    const after = await physician.ok('ward.setSpo2Scale', { bedKey: 'A/20', scale: 2, reason });
    expect(after).toMatchObject({ key: 'A/20', patientRef: patient, spo2Scale: 2, spo2ScaleSetBy: { reason, by: physicianName } });
    expect(after.news2).toMatchObject({ aggregate: before.news2!.aggregate - 3, anySingleThree: false });
    // The nurses' board says so too.
    const onBoard = (await nurse.ok('ward.board', {})).beds.find((b) => b.key === 'A/20')!;
    expect(onBoard).toMatchObject({ spo2Scale: 2, spo2ScaleSetBy: { reason } });
    expect(onBoard.news2!.aggregate).toBe(0);
    // The history is scored on the patient's scale.
    expect((await nurse.ok('ward.bedHistory', { bedKey: 'A/20', minutes: 5 })).readings.at(-1)!.news2).toBe(0);

    const { connection: admin } = await ws.signInAs('admin');
    const entries = (await admin.ok('audit.list', { limit: 20, action: 'vitals.spo2-scale' })).entries;
    // Newest first: the change, the too-short reason, the nurse refused.
    expect(entries.map((e) => [e.outcome, e.actorRole])).toEqual([
      ['success', 'physician'],
      ['denied', 'physician'],
      ['denied', 'nurse'],
    ]);
    expect(entries[0]).toMatchObject({ channel: 'ward.setSpo2Scale', entityType: 'Bed', entityId: 'A/20', patientId });
    const stored = (await auditDetails(ws, 'vitals.spo2-scale')).filter((e) => e.outcome === 'success');
    expect(stored).toEqual([{ outcome: 'success', entity_id: 'A/20', patient_id: patientId, detail: { bed: 'A/20', patientRef: patient, scale: 2, previousScale: 1, reason } }]);
  });

  it('refuses a bed without a known patient, and a bed not on the board', async () => {
    await publish('22', HYPOXIC_ON_AIR);
    await bedWhen(nurse, 'A/22', (b) => b.latest !== null, 'bed A/22 on the board');
    const noPatient = await physician.fail('ward.setSpo2Scale', { bedKey: 'A/22', scale: 2, reason });
    expect(noPatient.code).toBe('conflict');
    expect(noPatient.message).toMatch(/No patient is known in bed A\/22: the scale is set for a patient/);
    expect((await physician.fail('ward.setSpo2Scale', { bedKey: 'Z/99', scale: 2, reason })).code).toBe('not-found');
    expect((await nurse.ok('ward.board', {})).beds.find((b) => b.key === 'A/22')).toMatchObject({ spo2Scale: 1, news2: { aggregate: 3 } });
  });

  it('follows the patient to another bed; the next patient in the old bed is back on scale 1', async () => {
    await publish('21', { ...HYPOXIC_ON_AIR, patient });
    const moved = await bedWhen(nurse, 'A/21', (b) => b.latest?.spo2 === 88, 'the patient in bed A/21');
    expect(moved).toMatchObject({ patientRef: patient, spo2Scale: 2, spo2ScaleSetBy: { reason }, news2: { aggregate: 0 } });
    expect((await nurse.ok('ward.bedHistory', { bedKey: 'A/21', minutes: 5 })).readings.at(-1)!.news2).toBe(0);

    const next = 'mrn:SCALE-NEXT-1';
    await publish('20', { ...HYPOXIC_ON_AIR, hr: 73, patient: next });
    const old = await bedWhen(nurse, 'A/20', (b) => b.patientRef === next && b.latest?.hr === 73, 'the next patient in bed A/20');
    expect(old).toMatchObject({ spo2Scale: 1, spo2ScaleSetBy: null, news2: { aggregate: 3, anySingleThree: true } });
  });

  it('goes back to scale 1 (the setting is removed)', async () => {
    const back = await physician.ok('ward.setSpo2Scale', { bedKey: 'A/21', scale: 1, reason: 'respiratory team review: no CO2 retention' });
    expect(back).toMatchObject({ spo2Scale: 1, spo2ScaleSetBy: null, news2: { aggregate: 3, anySingleThree: true } });
    await publish('21', { ...HYPOXIC_ON_AIR, hr: 74, patient });
    expect(await bedWhen(nurse, 'A/21', (b) => b.latest?.hr === 74, 'the next reading in bed A/21')).toMatchObject({ spo2Scale: 1, news2: { aggregate: 3 } });
    const stored = (await auditDetails(ws, 'vitals.spo2-scale')).filter((e) => e.outcome === 'success');
    expect(stored.at(-1)).toMatchObject({ entity_id: 'A/21', detail: { scale: 1, previousScale: 2, reason: 'respiratory team review: no CO2 retention' } });
  });
});

describe('NEWS2 SpO2 scale after a restart', () => {
  it('is read back from the store when the ward starts', async () => {
    const first = await setUpWorkstation();
    const patient = 'mrn:SCALE-RESTART-1';
    const reason = 'chronic hypercapnia, documented by the respiratory team';
    // The credentials live in the encrypted store: the same one works after the restart.
    const monitors: MonitorSecret[] = [];
    {
      const { connection: admin } = await first.signInAs('admin');
      monitors.push(...(await provisionMonitors(admin, 'A', ['30', '31'])).monitors);
    }
    const secret = (bed: string) => monitors.find((m) => m.bed === bed)!;
    let client = await connectMonitor((await until(() => first.app.vitalsBrokerUrl ?? undefined, 'the broker'))!, secret('30'), { clientId: 'test-monitor-restart-1' });
    try {
      const { connection: doctor } = await first.signInAs('physician');
      await publish('30', { ...HYPOXIC_ON_AIR, patient }, client);
      await bedWhen(doctor, 'A/30', (b) => b.latest !== null, 'bed A/30');
      expect((await doctor.ok('ward.setSpo2Scale', { bedKey: 'A/30', scale: 2, reason })).spo2Scale).toBe(2);
    } finally {
      await client.endAsync();
      await first.app.close();
    }

    const app = await createApp({ config: first.config, host: 'headless', now: () => new Date(), log: () => undefined, announce: () => undefined });
    try {
      await connect(app).ok('store.unlock', { passphrase: STORE_PASSPHRASE });
      const account = first.demoAccounts.find((a) => a.role === 'physician')!;
      const doctor = connect(app);
      await doctor.ok('auth.signIn', { username: account.username, password: account.password });
      client = await connectMonitor((await until(() => app.vitalsBrokerUrl ?? undefined, 'the broker after the restart'))!, secret('31'), { clientId: 'test-monitor-restart-2' });
      try {
        await publish('31', { ...HYPOXIC_ON_AIR, patient }, client);
        const bed = await bedWhen(doctor, 'A/31', (b) => b.latest !== null, 'bed A/31 after the restart');
        expect(bed).toMatchObject({ spo2Scale: 2, spo2ScaleSetBy: { reason, by: 'Dr Phil Demo (synthetic)' }, news2: { aggregate: 0 } });
      } finally {
        await client.endAsync();
      }
    } finally {
      await app.close();
    }
  });
});
