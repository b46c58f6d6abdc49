/** The per-source budget of audited refusals: the first ones in full, the rest counted into one summary per window. */
import { describe, expect, it } from 'vitest';
import type { AuditInput } from '../../src/main/security/audit-ledger.js';
import { RefusalAudit, SUMMARY_ACTION } from '../../src/main/security/refusal-audit.js';

function rig(options: { perWindow?: number; maxPending?: number } = {}) {
  const clock = { now: 1_000_000 };
  const written: AuditInput[] = [];
  const store = { open: true };
  const audit = new RefusalAudit({
    perWindow: options.perWindow ?? 3,
    windowMs: 60_000,
    maxPending: options.maxPending ?? 100,
    now: () => clock.now,
    write: (entries) => {
      if (!store.open) return false;
      written.push(...entries);
      return true;
    },
  });
  return { clock, written, store, audit };
}
const refusal = (action: string, code = 'forbidden'): AuditInput => ({ actor: null, action, outcome: 'denied', outcomeDetail: `${code}: refused` });

describe('refusal audit budget', () => {
  it('writes the first refusals of a source in full and one summary for the rest when the window ends', () => {
    const { clock, written, audit } = rig();
    for (let i = 0; i < 10; i += 1) audit.record('ws:127.0.0.1', refusal(i % 2 ? 'ipc.unknown-channel' : 'user.list', i % 2 ? 'unknown-channel' : 'forbidden'));
    expect(written.map((e) => e.action)).toEqual(['user.list', 'ipc.unknown-channel', 'user.list']);
    audit.flush();
    expect(written).toHaveLength(3); // the window is still open
    clock.now += 60_000;
    audit.flush();
    expect(written).toHaveLength(4);
    expect(written[3]).toMatchObject({ action: SUMMARY_ACTION, outcome: 'denied', detail: { source: 'ws:127.0.0.1', suppressed: 7, byKind: { 'ipc.unknown-channel unknown-channel': 4, 'user.list forbidden': 3 } } });
  });

  it('gives every source its own budget', () => {
    const { written, audit } = rig({ perWindow: 1 });
    audit.record('a', refusal('x'));
    audit.record('a', refusal('x'));
    audit.record('b', refusal('y'));
    expect(written.map((e) => e.action)).toEqual(['x', 'y']);
  });

  it('a new window after a quiet one writes in full again, and closing the old one writes its summary first', () => {
    const { clock, written, audit } = rig({ perWindow: 1 });
    audit.record('a', refusal('x'));
    audit.record('a', refusal('x'));
    clock.now += 61_000;
    audit.record('a', refusal('z'));
    expect(written.map((e) => e.action)).toEqual(['x', SUMMARY_ACTION, 'z']);
  });

  it('keeps refusals while the store is closed and writes them, in order, when it opens', () => {
    const { written, store, audit } = rig();
    store.open = false;
    audit.record('a', refusal('store.unlock', 'wrong-passphrase'));
    audit.record('a', refusal('store.unlock', 'wrong-passphrase'));
    expect(audit.pendingCount).toBe(2);
    expect(written).toEqual([]);
    store.open = true;
    audit.flush();
    expect(written.map((e) => e.outcomeDetail)).toEqual(['wrong-passphrase: refused', 'wrong-passphrase: refused']);
    expect(audit.pendingCount).toBe(0);
  });

  it('past maxPending while closed, counts instead of keeping: memory stays bounded', () => {
    const { written, store, audit } = rig({ perWindow: 1000, maxPending: 5 });
    store.open = false;
    for (let i = 0; i < 1000; i += 1) audit.record(`source-${i}`, refusal('auth.sign-in', 'unauthenticated'));
    expect(audit.pendingCount).toBe(6); // 5 in full + 1 summary
    store.open = true;
    audit.flush(true);
    expect(written).toHaveLength(6);
    expect(written[5]).toMatchObject({ action: SUMMARY_ACTION, detail: { whileStoreClosed: true, suppressed: 995 } });
  });
});
