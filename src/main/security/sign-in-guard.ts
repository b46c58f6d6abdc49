/**
 * What stands between a password guesser and the accounts:
 * - a per-source back-off over every failed secret (sign-in, unlock, store passphrase), so one source
 *   cannot spray many names or passphrases;
 * - account lockout after `maxFailedSignIns` wrong passwords (stored on the account, see UsersRepository);
 * - the same lockout, kept in memory, for names that are NOT accounts, so that the answers (wording,
 *   timing, the attempt on which "locked" first appears) never tell a guesser which names exist.
 */
import { NwError } from '../../shared/errors.js';
import { FailureThrottle } from './throttle.js';

export interface SignInGuardOptions {
  maxFailedSignIns: number;
  lockoutMs: number;
  now: () => number;
}

/** Failures a source may make before the back-off starts, and its bounds. */
const SOURCE_FREE_FAILURES = 10;
const SOURCE_BASE_DELAY_MS = 1_000;
const SOURCE_MAX_DELAY_MS = 60_000;
const SOURCE_FORGET_MS = 15 * 60_000;
/** Unknown names remembered at most (oldest forgotten first): a flood of names costs bounded memory. */
const MAX_UNKNOWN_NAMES = 10_000;

interface UnknownName {
  failures: number;
  lockedUntil: number;
}

export class SignInGuard {
  private readonly throttle: FailureThrottle;
  private readonly unknownNames = new Map<string, UnknownName>();

  constructor(private readonly options: SignInGuardOptions) {
    this.throttle = new FailureThrottle({
      freeFailures: SOURCE_FREE_FAILURES,
      baseDelayMs: SOURCE_BASE_DELAY_MS,
      maxDelayMs: SOURCE_MAX_DELAY_MS,
      forgetAfterMs: SOURCE_FORGET_MS,
      maxKeys: 10_000,
      now: options.now,
    });
  }

  /** Before any secret from `source` is checked: `rate-limited` while it must wait. */
  beforeAttempt(source: string): void {
    this.throttle.check(source);
  }

  failed(source: string): void {
    this.throttle.failure(source);
  }

  succeeded(source: string): void {
    this.throttle.success(source);
  }

  /** The one wording of a lockout, for real and unknown names alike. */
  lockedError(lockedUntil: number): NwError {
    return new NwError(
      'account-locked',
      `This account is locked after ${this.options.maxFailedSignIns} failed sign-ins until ${new Date(lockedUntil).toLocaleTimeString('en-GB')}. An administrator can unlock it sooner.`,
    );
  }

  /** For a name that is no account: throws the lockout a real account would be in after as many failures. */
  assertUnknownNotLocked(username: string): void {
    const entry = this.unknownNames.get(username);
    if (entry && entry.lockedUntil > this.options.now()) throw this.lockedError(entry.lockedUntil);
  }

  /** Counts a failure against a name that is no account, as UsersRepository.recordFailedSignIn does for one that is. */
  failedUnknown(username: string): void {
    const now = this.options.now();
    const entry = this.unknownNames.get(username) ?? { failures: 0, lockedUntil: 0 };
    if (entry.lockedUntil && entry.lockedUntil <= now) entry.lockedUntil = 0;
    entry.failures += 1;
    if (entry.failures >= this.options.maxFailedSignIns) {
      entry.failures = 0;
      entry.lockedUntil = now + this.options.lockoutMs;
    }
    this.unknownNames.delete(username);
    this.unknownNames.set(username, entry);
    if (this.unknownNames.size > MAX_UNKNOWN_NAMES) this.unknownNames.delete(this.unknownNames.keys().next().value as string);
  }
}
