/**
 * Back-off for failing secret checks (sign-in, unlock, store passphrase) per source. Account lockout
 * protects one account; this protects all of them from one source trying many names or passphrases:
 * after `freeFailures` failures each further attempt must wait twice as long as the one before, up to
 * `maxDelayMs`. A source that stays quiet for `forgetAfterMs` starts afresh. Memory is bounded: the
 * oldest sources are forgotten first.
 */
import { NwError } from '../../shared/errors.js';

export interface FailureThrottleOptions {
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
  forgetAfterMs: number;
  maxKeys: number;
  now: () => number;
}

interface Failures {
  count: number;
  last: number;
  blockedUntil: number;
}

export class FailureThrottle {
  private readonly byKey = new Map<string, Failures>();

  constructor(private readonly options: FailureThrottleOptions) {}

  /** Throws `rate-limited` while `key` must wait; does not count as an attempt. */
  check(key: string): void {
    const entry = this.current(key);
    if (!entry) return;
    const wait = entry.blockedUntil - this.options.now();
    if (wait > 0) throw new NwError('rate-limited', `Too many failed attempts from this window. Try again in ${Math.ceil(wait / 1000)} s.`);
  }

  failure(key: string): void {
    const now = this.options.now();
    const entry = this.current(key) ?? { count: 0, last: now, blockedUntil: 0 };
    entry.count += 1;
    entry.last = now;
    const over = entry.count - this.options.freeFailures;
    if (over > 0) entry.blockedUntil = now + Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (over - 1));
    this.byKey.delete(key);
    this.byKey.set(key, entry);
    if (this.byKey.size > this.options.maxKeys) this.byKey.delete(this.byKey.keys().next().value as string);
  }

  success(key: string): void {
    this.byKey.delete(key);
  }

  private current(key: string): Failures | null {
    const entry = this.byKey.get(key);
    if (!entry) return null;
    if (this.options.now() - entry.last >= this.options.forgetAfterMs && this.options.now() >= entry.blockedUntil) {
      this.byKey.delete(key);
      return null;
    }
    return entry;
  }
}
