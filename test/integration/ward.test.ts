/**
 * The ward end to end inside the app: a monitor publishes to the embedded broker, readings are stored,
 * scored and alarmed; nurses' windows get updates; a nurse acknowledges with a reason, audited.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlarmView, WardBoard } from '../../src/shared/ipc.js';
import { setUpWorkstation, type TestConnection, type Workstation } from '../support/harness.js';

let ws: Workstation;
let nurse: TestConnection;
let publisher: mqtt.MqttClient;
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

function publish(bed: string, vitals: Record<string, unknown>): Promise<void> {
  const payload = { v: 1, deviceId: `mon-${bed}`, seq: seq++, ts: new Date().toISOString(), ...vitals };
  return new Promise((resolve, reject) => publisher.publish(`ward/A/bed/${bed}/vitals`, JSON.stringify(payload), { qos: 1 }, (e) => (e ? reject(e) : resolve())));
}

beforeAll(async () => {
  ws = await setUpWorkstation();
  ({ connection: nurse } = await ws.signInAs('nurse'));
  const url = await until(() => ws.app.vitalsBrokerUrl ?? undefined, 'the embedded broker');
  expect(url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
  publisher = await mqtt.connectAsync(url, { clientId: 'test-monitor', clean: true });
});
afterAll(async () => {
  await publisher?.endAsync();
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
    await new Promise<void>((resolve) => publisher.publish('ward/A/bed/3/vitals', '{ not json', { qos: 1 }, () => resolve()));
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
    // Not spawnSync: the broker lives in this process and must keep running meanwhile.
    const run = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [cli, 'simulate-ward', '--broker', ws.app.vitalsBrokerUrl!, ...args], { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) =>
          resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
        );
      });
    const deteriorating = await run('--ward', 'S', '--beds', '3', '--interval', '0.5', '--duration', '3', '--scenario', 'deteriorating', '--drift-seconds', '2');
    expect(deteriorating.status, deteriorating.stderr).toBe(0);
    expect(deteriorating.stdout).toMatch(/published \d+ readings/);
    const malformed = await run('--ward', 'M', '--beds', '2', '--interval', '0.2', '--duration', '2', '--scenario', 'malformed');
    expect(malformed.stdout).toMatch(/published \d+ readings and \d+ malformed messages/);
    expect((await run('--beds', 'lots')).status).toBe(2);
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
