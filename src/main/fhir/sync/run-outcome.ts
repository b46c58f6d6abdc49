/**
 * One verdict per server for a pass that pushed and then pulled (issue 10 item 8): a pull that failed,
 * or met unsent local changes (conflicts), counts as a push failure or a push conflict does. The app's
 * Sync screen (sync.runNow, sync.status) and `neuroward sync run` read the same rules from here.
 */
import type { ServerPullResult } from './pull.js';
import type { ServerPassResult } from './server-sync.js';

/** The pass result as the screen shows it: a drained push whose pull failed is `failed` with the pull's error; pull conflicts are counted in. */
export function passWithPull(pass: ServerPassResult, pull: ServerPullResult | undefined): ServerPassResult {
  if (!pull || pull.state === 'skipped') return pass;
  const conflicts = pass.conflicts + pull.conflicts;
  if (pull.state === 'done') return { ...pass, conflicts, requests: pass.requests + pull.requests };
  const pullError = `pull ${pull.state === 'partial' ? 'partly failed' : 'failed'}: ${pull.error ?? 'no reason given'}`;
  return {
    ...pass,
    conflicts,
    requests: pass.requests + pull.requests,
    // A push failure stays the state it was (its retry time rules); a push that went through is failed by its pull.
    state: pass.state === 'drained' ? 'failed' : pass.state,
    error: pass.error ? `${pass.error}; ${pullError}` : pullError,
  };
}

/** Whether a server's push and pull together went through with nothing left for a person: the exit code's rule. */
export function passSucceeded(pass: ServerPassResult, pull: ServerPullResult | undefined): boolean {
  const combined = passWithPull(pass, pull);
  return combined.state === 'drained' && combined.conflicts === 0 && combined.deadLetters === 0;
}

export interface PullTypeStatus {
  resourceType: string;
  lastError: string | null;
  lastErrorAt: string | null;
}

/**
 * A server's current error as its card shows it: the push's, or else the newest current error of a
 * pulled type (`pull of Practitioner: …`), so a server that takes our writes but cannot be pulled from
 * is not shown as fine.
 */
export function currentError(push: { lastError: string | null; lastErrorAt: string | null }, pull: readonly PullTypeStatus[]): { lastError: string | null; lastErrorAt: string | null } {
  if (push.lastError) return { lastError: push.lastError, lastErrorAt: push.lastErrorAt };
  const failing = pull.filter((t) => t.lastError).sort((a, b) => (b.lastErrorAt ?? '').localeCompare(a.lastErrorAt ?? ''));
  const newest = failing[0];
  if (!newest) return { lastError: null, lastErrorAt: null };
  const more = failing.length > 1 ? ` (and ${failing.length - 1} more type${failing.length > 2 ? 's' : ''})` : '';
  return { lastError: `pull of ${newest.resourceType}: ${newest.lastError}${more}`, lastErrorAt: newest.lastErrorAt };
}
