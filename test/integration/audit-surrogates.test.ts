/**
 * Security finding 2 of issue 7: any client could break `audit verify` for good by putting a lone
 * UTF-16 surrogate into an audited string (SQLite keeps it as invalid UTF-8 and reads back U+FFFD,
 * so the entry no longer matched its hash). Through the real app and dispatcher, as a client would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditVerifyResult } from '../../src/shared/ipc.js';
import { setUpWorkstation, type TestConnection, type Workstation } from '../support/harness.js';

let ws: Workstation;
let nurse: TestConnection;
let admin: TestConnection;

beforeAll(async () => {
  ws = await setUpWorkstation();
  nurse = (await ws.signInAs('nurse')).connection;
  admin = (await ws.signInAs('admin')).connection;
});
afterAll(async () => {
  await ws?.app.close();
});

async function verify(): Promise<AuditVerifyResult> {
  return admin.ok('audit.verify', {});
}

describe('lone surrogates from clients do not break the audit chain', () => {
  it('starts intact', async () => {
    expect(await verify()).toMatchObject({ ok: true, problems: [], problem: null });
  });

  it('an unknown channel named with a lone surrogate is audited and the chain still verifies', async () => {
    const envelope = await nurse.raw('nope\ud800', {});
    expect(envelope).toMatchObject({ ok: false, error: { code: 'unknown-channel' } });
    const unpaired = await nurse.raw('\udc00x\ud800\ud800', {});
    expect(unpaired).toMatchObject({ ok: false, error: { code: 'unknown-channel' } });
    // A well-formed pair cut in half by the 100-character limit on stored channel names.
    const cut = await nurse.raw(`${'a'.repeat(99)}\u{1F600}`, {});
    expect(cut).toMatchObject({ ok: false, error: { code: 'unknown-channel' } });

    const result = await verify();
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);

    const listed = await admin.ok('audit.list', { limit: 10, action: 'ipc.unknown-channel' });
    const channels = listed.entries.map((e) => e.channel);
    expect(channels).toContain('nope\ufffd');
    expect(channels).toContain('\ufffdx\ufffd\ufffd');
    expect(channels).toContain(`${'a'.repeat(99)}\ufffd`);
  });

  it('a bed key with a lone surrogate in ward.bedHistory is audited and the chain still verifies', async () => {
    // No such bed: the call may be answered or refused, it is audited either way (the key as the
    // entity, and perhaps quoted in the error too).
    await nurse.raw('ward.bedHistory', { bedKey: 'A-01\ud800', minutes: 5 });
    await nurse.raw('ward.bedHistory', { bedKey: '\udfffA-02', minutes: 5 });

    const result = await verify();
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);

    const listed = await admin.ok('audit.list', { limit: 20, action: 'vitals.read' });
    const audited = listed.entries.map((e) => `${e.entityId ?? ''} ${e.outcomeDetail ?? ''}`).join('\n');
    expect(audited).toContain('A-01\ufffd');
    expect(audited).toContain('\ufffdA-02');
    expect(audited).not.toMatch(/[\ud800-\udfff]/);
  });

  it('lone surrogates in refused requests (quoted in the error, nested in the detail) keep the chain intact', async () => {
    // Too long a bed key: the refusal quotes the request in its outcome detail.
    await nurse.raw('ward.bedHistory', { bedKey: `\ud800${'x'.repeat(80)}`, minutes: 5 });
    await nurse.raw('ward.bedHistory', { ['\ud800key']: 1 });
    await nurse.raw('ward.setSpo2Scale', { bedKey: 'A-01', scale: 2, reason: 'because \udbff of reasons' });

    const result = await verify();
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ ok: true, problem: null });
  });
});
