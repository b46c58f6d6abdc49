/**
 * A pull that fails counts as a push failure does (issue 10 item 8): in the verdict of a pass (the exit
 * code of `neuroward sync run`, the result of the Sync screen's "Retry now") and in the server's current
 * error on its card. Real engine, Medplum's router behind the fault proxy, which refuses the searches.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { currentError, passSucceeded, passWithPull } from '../../src/main/fhir/sync/run-outcome.js';
import type { ServerPassResult } from '../../src/main/fhir/sync/server-sync.js';
import { startSyncRig, testPatient, type SyncRig } from '../support/sync-rig.js';

let rig: SyncRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const PULL = { resourceTypes: ['Practitioner' as const], pageSize: 50, overlapMs: 5_000 };

async function putOnServer(r: SyncRig, resource: { resourceType: string; id: string }): Promise<void> {
  const response = await fetch(`${r.server.baseUrl}/${resource.resourceType}/${resource.id}`, { method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(resource) });
  expect(response.status).toBeLessThan(300);
}

describe('a pass that pushed and pulled: one verdict per server', () => {
  it('a refused pull fails the pass (state, error, exit rule, card) though the push drained; the next good pull clears it', async () => {
    rig = await startSyncRig();
    const r = rig;
    let refuseSearches = true;
    r.proxy.setPlan((req) => (refuseSearches && req.method === 'GET' && req.url.includes('/Practitioner?') ? { kind: 'status', status: 500 } : { kind: 'pass' }));
    await putOnServer(r, { resourceType: 'Practitioner', id: 'dr-remote', name: [{ family: 'Remote' }] } as { resourceType: string; id: string });
    const engine = r.engine([{ timeoutMs: 5_000, pull: PULL }]);
    for (let i = 0; i < 3; i++) r.truth.put(testPatient(`ro${i}`, `Fam${i}`), 'create');

    const report = await engine.runOnce({ force: true });
    const [push] = report.servers;
    const [pull] = report.pulls;
    // The push went through on its own...
    expect(push).toMatchObject({ state: 'drained', sent: 3, error: null });
    expect(r.server.repo.current('Patient', 'ro0')).toBeTruthy();
    // ...the pull did not, and the server's verdict says so.
    expect(['partial', 'failed']).toContain(pull!.state);
    const combined = passWithPull(push!, pull);
    expect(combined.state).toBe('failed');
    expect(combined.error).toMatch(/^pull (partly )?failed: .*HTTP 500/);
    expect(combined.sent).toBe(3);
    expect(passSucceeded(push!, pull)).toBe(false);
    expect(passSucceeded(push!, undefined)).toBe(true); // the push alone was fine: it is the pull that fails the run

    // The card: no push error, so the pull's is the server's current error.
    const status = engine.status()[0]!;
    expect(status.lastError).toBeNull();
    const types = engine.pullStatus().find((p) => p.server === 'server-1')!.types;
    const shown = currentError(status, types);
    expect(shown.lastError).toMatch(/^pull of Practitioner: .*HTTP 500/);
    expect(shown.lastErrorAt).not.toBeNull();

    // The server answers searches again: the next pass pulls, and the verdict and the card are clean.
    refuseSearches = false;
    const again = await engine.runOnce({ force: true });
    expect(again.pulls[0]).toMatchObject({ state: 'done', applied: 1 });
    expect(passSucceeded(again.servers[0]!, again.pulls[0])).toBe(true);
    expect(passWithPull(again.servers[0]!, again.pulls[0]).state).toBe('drained');
    expect(currentError(engine.status()[0]!, engine.pullStatus()[0]!.types)).toEqual({ lastError: null, lastErrorAt: null });
  });

  it('a push failure keeps its own state and error first; pull conflicts count as conflicts', () => {
    const pass: ServerPassResult = { server: 's', state: 'waiting', sent: 0, adopted: 0, unchanged: 0, conflicts: 0, deadLetters: 0, requests: 0, rowsFinished: 0, error: 's: cannot reach x', nextAttemptAt: null };
    const failedPull = { server: 's', state: 'failed' as const, types: [], applied: 0, conflicts: 0, requests: 1, error: 'Practitioner: cannot reach x', messages: [] };
    expect(passWithPull(pass, failedPull)).toMatchObject({ state: 'waiting', error: 's: cannot reach x; pull failed: Practitioner: cannot reach x', requests: 1 });
    const drained: ServerPassResult = { ...pass, state: 'drained', error: null };
    const pullWithConflict = { ...failedPull, state: 'done' as const, conflicts: 1, error: null };
    expect(passWithPull(drained, pullWithConflict)).toMatchObject({ state: 'drained', conflicts: 1, error: null });
    expect(passSucceeded(drained, pullWithConflict)).toBe(false);
    expect(passSucceeded(drained, { ...pullWithConflict, state: 'skipped', conflicts: 0 })).toBe(true);
    // The push's own error wins on the card; the newest failing type otherwise, with a count of the others.
    expect(currentError({ lastError: 'push broke', lastErrorAt: '2026-03-01T08:00:00.000Z' }, [{ resourceType: 'Slot', lastError: 'x', lastErrorAt: '2026-03-01T09:00:00.000Z' }]).lastError).toBe('push broke');
    expect(
      currentError({ lastError: null, lastErrorAt: null }, [
        { resourceType: 'Slot', lastError: 'older', lastErrorAt: '2026-03-01T08:00:00.000Z' },
        { resourceType: 'Schedule', lastError: 'newer', lastErrorAt: '2026-03-01T09:00:00.000Z' },
        { resourceType: 'Location', lastError: null, lastErrorAt: null },
      ]),
    ).toEqual({ lastError: 'pull of Schedule: newer (and 1 more type)', lastErrorAt: '2026-03-01T09:00:00.000Z' });
  });
});
