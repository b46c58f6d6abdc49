/**
 * Refusals are audited, but a client must not be able to fill the ledger (and the WAL) with them. Each
 * source gets a budget of entries per window: within it every refusal is its own entry; past it the
 * refusals are only counted, and one summary entry per source and window says how many there were of
 * each kind. Refusals that happen while the store is closed (wrong store passphrases, a host refusal
 * before setup) wait in memory and are written when the store opens; past `maxPending` they are
 * counted too, so a flood before unlock costs a fixed amount of memory.
 */
import type { AuditInput } from './audit-ledger.js';

export interface RefusalAuditOptions {
  /** Entries per source and window written one by one before refusals are only counted. */
  perWindow: number;
  windowMs: number;
  /** Refusals kept in full while the store is closed. */
  maxPending: number;
  now: () => number;
  /** Appends the entries in one transaction; false when the store is not open (they are kept for later). */
  write: (entries: AuditInput[]) => boolean;
}

interface SourceWindow {
  start: number;
  written: number;
  /** Refusals past the budget, by action and error code. */
  suppressed: Map<string, number>;
  suppressedTotal: number;
  lastAt: number;
}

export const SUMMARY_ACTION = 'audit.refusals-summary';

export class RefusalAudit {
  private readonly windows = new Map<string, SourceWindow>();
  private pending: AuditInput[] = [];

  constructor(private readonly options: RefusalAuditOptions) {}

  /** Audits one refusal from `source`, or counts it when the source's budget for this window is spent. */
  record(source: string, entry: AuditInput): void {
    const now = this.options.now();
    let window = this.windows.get(source);
    if (window && now - window.start >= this.options.windowMs) {
      this.close(source, window);
      window = undefined;
    }
    if (!window) {
      window = { start: now, written: 0, suppressed: new Map(), suppressedTotal: 0, lastAt: now };
      this.windows.set(source, window);
    }
    window.lastAt = now;
    if (window.written < this.options.perWindow) {
      window.written += 1;
      this.emit([entry]);
      return;
    }
    const kind = `${entry.action} ${entry.outcomeDetail?.split(':')[0] ?? entry.outcome}`;
    window.suppressed.set(kind, (window.suppressed.get(kind) ?? 0) + 1);
    window.suppressedTotal += 1;
  }

  /** Closes windows that have ended (all of them with `all`) and retries what waited for the store. */
  flush(all = false): void {
    const now = this.options.now();
    for (const [source, window] of [...this.windows]) {
      if (all || now - window.start >= this.options.windowMs) this.close(source, window);
    }
    if (this.pending.length) {
      const waiting = this.pending;
      this.pending = [];
      this.emit(waiting);
    }
  }

  /** Refusals held until the store opens (for tests and the status line). */
  get pendingCount(): number {
    return this.pending.length;
  }

  private close(source: string, window: SourceWindow): void {
    this.windows.delete(source);
    if (window.suppressedTotal === 0) return;
    this.emit([
      {
        actor: null,
        connection: source,
        action: SUMMARY_ACTION,
        outcome: 'denied',
        outcomeDetail: `${window.suppressedTotal} further refusals from ${source} between ${new Date(window.start).toISOString()} and ${new Date(window.lastAt).toISOString()} were counted, not written one by one`,
        detail: { source, from: new Date(window.start).toISOString(), to: new Date(window.lastAt).toISOString(), suppressed: window.suppressedTotal, byKind: Object.fromEntries(window.suppressed) },
      },
    ]);
  }

  private emit(entries: AuditInput[]): void {
    if (this.pending.length === 0 && this.options.write(entries)) return;
    for (const entry of entries) {
      if (this.pending.length < this.options.maxPending) {
        this.pending.push(entry);
        continue;
      }
      // Over the memory budget: fold into the last pending entry, a summary of what could not be kept.
      const last = this.pending[this.pending.length - 1]!;
      if (last.action === SUMMARY_ACTION && last.detail?.['whileStoreClosed'] === true) {
        const count = Number(last.detail['suppressed']) + 1;
        last.detail = { ...last.detail, suppressed: count, to: new Date(this.options.now()).toISOString() };
        last.outcomeDetail = `${count} further refusals while the store was closed were counted, not written one by one`;
      } else {
        this.pending.push({
          actor: null,
          connection: entry.connection ?? null,
          action: SUMMARY_ACTION,
          outcome: 'denied',
          outcomeDetail: '1 further refusal while the store was closed was counted, not written one by one',
          detail: { whileStoreClosed: true, suppressed: 1, from: new Date(this.options.now()).toISOString(), to: new Date(this.options.now()).toISOString() },
        });
      }
    }
  }
}
