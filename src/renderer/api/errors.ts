/** Errors as the renderer sees them: everything a call can fail with becomes an ApiError. */
import type { ErrorCode, WireError } from '../../shared/errors.js';

/** Codes that exist only on this side of the border: the call never got an answer. */
export type ClientErrorCode = 'connection-lost' | 'not-connected' | 'timeout' | 'bad-reply' | 'no-bridge';
export type ApiErrorCode = ErrorCode | ClientErrorCode;
export type ApiIssue = { path: string; message: string };

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly issues: ApiIssue[];
  /** The channel the failing call went to, when known. */
  readonly channel: string | null;

  constructor(code: ApiErrorCode, message: string, issues: ApiIssue[] = [], channel: string | null = null) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.issues = issues;
    this.channel = channel;
  }

  static fromWire(error: WireError, channel: string): ApiError {
    return new ApiError(error.code, error.message, error.issues ?? [], channel);
  }

  /** Field-level messages keyed by issue path (prefix stripped), first message per field wins. */
  fieldErrors(prefix = ''): Record<string, string> {
    const out: Record<string, string> = {};
    for (const issue of this.issues) {
      if (prefix && !issue.path.startsWith(prefix)) continue;
      const key = prefix ? issue.path.slice(prefix.length) : issue.path;
      if (!(key in out)) out[key] = issue.message;
    }
    return out;
  }
}

/** Thrown by the WebSocket bridge when an answer cannot come; `call` turns it into an ApiError. */
export class TransportError extends Error {
  readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string) {
    super(message);
    this.name = 'TransportError';
    this.code = code;
  }
}

export function toApiError(error: unknown, channel: string | null = null): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof TransportError) return new ApiError(error.code, error.message, [], channel);
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError('internal', message || 'Unexpected error', [], channel);
}

/** A message fit to show a person. */
export function errorMessage(error: unknown): string {
  return toApiError(error).message;
}
