/** Error codes that cross the IPC border. The renderer shows `message`; `code` drives behaviour. */
export const ERROR_CODES = [
  'bad-request',
  'payload-too-large',
  'unknown-channel',
  'unauthenticated',
  'session-expired',
  'session-locked',
  'forbidden',
  'not-found',
  'conflict',
  'account-locked',
  'rate-limited',
  'store-locked',
  'store-uninitialized',
  'wrong-passphrase',
  'store-corrupted',
  /** A part the call needs is missing or broken (e.g. the AI model); the rest of the app works. */
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface WireError {
  code: ErrorCode;
  message: string;
  /** Field-level problems for `bad-request`: path joined with dots, and what is wrong. */
  issues?: { path: string; message: string }[];
}

export type Envelope<T> = { ok: true; value: T } | { ok: false; error: WireError };

/** Thrown in the main process; turned into a WireError at the IPC border. */
export class NwError extends Error {
  readonly code: ErrorCode;
  readonly issues: WireError['issues'];
  constructor(code: ErrorCode, message: string, issues?: WireError['issues']) {
    super(message);
    this.name = 'NwError';
    this.code = code;
    this.issues = issues;
  }
  toWire(): WireError {
    return this.issues ? { code: this.code, message: this.message, issues: this.issues } : { code: this.code, message: this.message };
  }
}
