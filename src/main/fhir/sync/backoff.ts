/**
 * When to try a server again. Exponential backoff with "full jitter" (a uniformly random wait between
 * zero and the exponential cap, AWS Architecture Blog 2015): workstations that lost the same link at
 * the same moment do not all come back at the same second. A server's own Retry-After wins when given.
 */

/** The wait before attempt `failures + 1`, after `failures` (≥ 1) consecutive failures. */
export function backoffDelayMs(failures: number, policy: { backoffBaseMs: number; backoffMaxMs: number }, random: () => number): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const cap = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** exponent);
  // At least a tenth of the cap, so a run of unlucky draws cannot turn retries into a busy loop.
  return Math.round(cap * (0.1 + 0.9 * random()));
}

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Null when absent or unreadable; a date
 * in the past is 0.
 */
export function parseRetryAfterMs(value: string | null | undefined, now: Date): number | null {
  if (!value) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now.getTime());
}
