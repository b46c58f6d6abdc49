/** What the audit screen asks of the ledger (issue 8 item 9): filters by a part of the action; demo data is the system's. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpWorkstation, type Workstation } from '../support/harness.js';

let ws: Workstation;
beforeAll(async () => {
  ws = await setUpWorkstation();
});
afterAll(async () => ws?.app.close());

describe('audit list', () => {
  it('the action filter matches a part of the name, in any case', async () => {
    const { connection: nurse } = await ws.signInAs('nurse');
    await nurse.ok('auth.breakGlass', { reason: 'patient collapsed on the ward, records needed', minutes: 5 });
    const { connection: admin } = await ws.signInAs('admin');
    for (const typed of ['break', 'Break-Gl', 'auth.break-glass']) {
      const { entries, total } = await admin.ok('audit.list', { limit: 20, action: typed });
      expect(total, typed).toBeGreaterThan(0);
      for (const e of entries) expect(e.action).toContain('break-glass');
    }
    expect((await admin.ok('audit.list', { limit: 5, action: 'no-such-action' })).total).toBe(0);
  });

  it('attributes the demo data loaded at setup to the system, not to the administrator', async () => {
    const { connection: admin } = await ws.signInAs('admin');
    const demo = (await admin.ok('audit.list', { limit: 100, action: 'create' })).entries.filter((e) => e.action === 'user.create' || e.action === 'patient.create');
    expect(demo.length).toBeGreaterThanOrEqual(4 + 5);
    for (const e of demo) expect(e).toMatchObject({ actorUsername: null, actorUserId: null });
    // Setup itself stays the administrator's act.
    const setup = (await admin.ok('audit.list', { limit: 5, action: 'setup.initialize' })).entries[0]!;
    expect(setup.actorUsername).toBe('admin.jones');
  });
});
