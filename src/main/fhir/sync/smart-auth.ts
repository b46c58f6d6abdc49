/**
 * SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html): the workstation
 * gets an access token by the OAuth 2 client_credentials grant, authenticating with a JWT it signs with
 * its private key (private_key_jwt, RFC 7523); the clinic registered the matching public key (JWKS) for
 * the client id. The token is cached until shortly before it expires; a 401 from the FHIR server drops
 * it (server-client.ts asks once more and retries once).
 *
 * Every failure to get a token is a TokenFailure that quotes the token endpoint's own `error` and
 * `error_description`, so the Sync screen and `neuroward sync status` show why, per server.
 */
import { createPrivateKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { fetch, type Dispatcher, type Headers } from 'undici';
import { parseRetryAfterMs } from './backoff.js';

/** The two algorithms the SMART specification requires servers to support. */
export type SmartSigningAlg = 'RS384' | 'ES384';

/** SMART v2 system scopes for everything the engine does: create, read, update, delete, search of every type. */
export const DEFAULT_SMART_SCOPE = 'system/*.cruds';

export interface SmartBackendCredentials {
  kind: 'smart-backend';
  clientId: string;
  /** null: discovered from `<baseUrl>/.well-known/smart-configuration` (`token_endpoint`). */
  tokenUrl: string | null;
  privateKey: KeyObject;
  alg: SmartSigningAlg;
  /** The `kid` of the registered public key; sent in the assertion's header when set. */
  kid: string | null;
  scope: string;
}

export type TokenFailureKind =
  /** The token endpoint answered with an OAuth error (invalid_client, invalid_scope, ...) or an HTTP error. */
  | 'refused'
  | 'unreachable'
  /** The answer was not an OAuth token response (HTML, not JSON, no access_token). */
  | 'not-oauth'
  /** No token URL configured, and the server's smart-configuration did not give one. */
  | 'discovery';

export class TokenFailure extends Error {
  constructor(
    readonly kind: TokenFailureKind,
    message: string,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = 'TokenFailure';
  }
}

/** Reads a PEM private key and the algorithm it signs with; a key that cannot sign RS384/ES384 is refused here, at start. */
export function smartSigningKey(pem: string, alg: SmartSigningAlg | undefined, passphrase?: string): { privateKey: KeyObject; alg: SmartSigningAlg } {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(passphrase ? { key: pem, format: 'pem', passphrase } : { key: pem, format: 'pem' });
  } catch (error) {
    throw new Error(`the private key is not a readable PEM key (${(error as Error).message})`);
  }
  const type = privateKey.asymmetricKeyType;
  const details = privateKey.asymmetricKeyDetails ?? {};
  const fromKey: SmartSigningAlg | null = type === 'rsa' ? 'RS384' : type === 'ec' && details.namedCurve === 'secp384r1' ? 'ES384' : null;
  if (!fromKey) {
    throw new Error(`the private key is ${type ?? 'of an unknown type'}${details.namedCurve ? ` on curve ${details.namedCurve}` : ''}: SMART Backend Services signs with RS384 (an RSA key) or ES384 (an EC key on P-384)`);
  }
  if (alg && alg !== fromKey) throw new Error(`alg ${alg} does not match the private key, which signs ${fromKey}`);
  // The specification's RSA keys are at least 2048 bits.
  if (type === 'rsa' && (details.modulusLength ?? 0) < 2048) throw new Error(`the RSA key has ${details.modulusLength ?? '?'} bits; at least 2048 are needed`);
  return { privateKey, alg: fromKey };
}

/** How far ahead the assertion expires: the specification allows at most 5 minutes; 4 leave room for a clock a little ahead. */
const ASSERTION_LIFETIME_S = 240;

/** The signed client assertion (RFC 7523) for one token request. */
export function clientAssertion(credentials: Pick<SmartBackendCredentials, 'clientId' | 'privateKey' | 'alg' | 'kid'>, tokenUrl: string, nowMs: number): string {
  const header = { alg: credentials.alg, typ: 'JWT', ...(credentials.kid ? { kid: credentials.kid } : {}) };
  const iat = Math.floor(nowMs / 1000);
  const claims = { iss: credentials.clientId, sub: credentials.clientId, aud: tokenUrl, iat, exp: iat + ASSERTION_LIFETIME_S, jti: randomUUID() };
  const input = `${base64url(header)}.${base64url(claims)}`;
  // JWS wants the raw r||s pair for ECDSA, not node's default DER encoding.
  const signature = sign('sha384', Buffer.from(input), credentials.alg === 'ES384' ? { key: credentials.privateKey, dsaEncoding: 'ieee-p1363' } : credentials.privateKey);
  return `${input}.${signature.toString('base64url')}`;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

interface CachedToken {
  value: string;
  /** Reused until then (its expiry less a margin). */
  reuseUntilMs: number;
}

/** A token response without expires_in (the specification requires it) is taken to live 5 minutes, its recommended maximum. */
const ASSUMED_LIFETIME_S = 300;

/** Tokens for one server: one request at a time, shared by every Bundle on the wire. */
export class SmartTokenSource {
  private cached: CachedToken | null = null;
  private pending: Promise<string> | null = null;
  private discoveredTokenUrl: string | null = null;
  /** Token requests made (for the Sync screen's diagnostics and the tests). */
  requests = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly credentials: SmartBackendCredentials,
    private readonly options: { dispatcher: Dispatcher | null; timeoutMs: number; /** Wall clock: the token endpoint judges the assertion by its own. */ clockMs?: () => number },
  ) {}

  private now(): number {
    return (this.options.clockMs ?? Date.now)();
  }

  /** A valid access token: the cached one, or a new one (concurrent callers share one request). */
  async token(): Promise<string> {
    if (this.cached && this.now() < this.cached.reuseUntilMs) return this.cached.value;
    this.pending ??= this.fetchToken().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  /** The server refused this token (401): forget it, unless a newer one already replaced it. */
  invalidate(token: string): void {
    if (this.cached?.value === token) this.cached = null;
  }

  private async fetchToken(): Promise<string> {
    const tokenUrl = await this.tokenUrl();
    const startedMs = this.now();
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: this.credentials.scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion(this.credentials, tokenUrl, startedMs),
    });
    this.requests += 1;
    const { status, headers, text } = await this.request(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: body.toString() }, 'token endpoint');
    const json = parseJsonObject(text);
    const where = `the token endpoint ${tokenUrl}`;
    if (status < 200 || status >= 300) {
      const retryAfterMs = parseRetryAfterMs(headers.get('retry-after'), new Date(this.now()));
      if (json && typeof json.error === 'string') {
        const description = typeof json.error_description === 'string' ? `: ${json.error_description}` : '';
        throw new TokenFailure('refused', `${where} refused client "${this.credentials.clientId}" (HTTP ${status}, ${json.error}${description})`, retryAfterMs);
      }
      throw new TokenFailure(json ? 'refused' : 'not-oauth', `${where} answered HTTP ${status}${json ? '' : ` with ${describeBody(headers.get('content-type'), text)}`}`, retryAfterMs);
    }
    if (!json) throw new TokenFailure('not-oauth', `${where} answered with ${describeBody(headers.get('content-type'), text)}, not an OAuth token response`);
    const accessToken = json.access_token;
    if (typeof accessToken !== 'string' || accessToken.length === 0) throw new TokenFailure('not-oauth', `${where} answered JSON without an access_token`);
    if (typeof json.token_type !== 'string' || json.token_type.toLowerCase() !== 'bearer') {
      throw new TokenFailure('not-oauth', `${where} issued a token of type ${JSON.stringify(json.token_type)}, not a Bearer token`);
    }
    const lifetimeS = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : ASSUMED_LIFETIME_S;
    // Renewed a little before it expires, so a token never runs out between being sent and being checked:
    // 30 s, or a fifth of a short lifetime.
    const marginMs = Math.min(30_000, (lifetimeS * 1000) / 5);
    this.cached = { value: accessToken, reuseUntilMs: startedMs + lifetimeS * 1000 - marginMs };
    return accessToken;
  }

  /** The configured token URL, else the server's smart-configuration `token_endpoint` (asked once, again after a failure). */
  private async tokenUrl(): Promise<string> {
    if (this.credentials.tokenUrl) return this.credentials.tokenUrl;
    if (this.discoveredTokenUrl) return this.discoveredTokenUrl;
    const wellKnown = `${this.baseUrl}/.well-known/smart-configuration`;
    const { status, headers, text } = await this.request(wellKnown, { method: 'GET', headers: { accept: 'application/json' } }, 'SMART configuration');
    const json = parseJsonObject(text);
    if (status !== 200 || !json) {
      throw new TokenFailure('discovery', `no tokenUrl is configured and ${wellKnown} answered HTTP ${status}${json ? '' : ` with ${describeBody(headers.get('content-type'), text)}`}`);
    }
    const endpoint = json.token_endpoint;
    if (typeof endpoint !== 'string' || !/^https?:\/\//i.test(endpoint)) throw new TokenFailure('discovery', `no tokenUrl is configured and ${wellKnown} names no token_endpoint URL`);
    this.discoveredTokenUrl = endpoint;
    return endpoint;
  }

  private async request(url: string, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }, what: string): Promise<{ status: number; headers: Headers; text: string }> {
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(this.options.timeoutMs), ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}) });
      return { status: response.status, headers: response.headers, text: await response.text() };
    } catch (error) {
      // The next attempt asks the server's smart-configuration again: the token endpoint may have moved.
      this.discoveredTokenUrl = null;
      const err = error as Error & { cause?: { code?: string; message?: string } };
      const detail = err.name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
      throw new TokenFailure('unreachable', `cannot reach the ${what} ${url} (${detail})`);
    }
  }
}

function parseJsonObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function describeBody(contentType: string | null, text: string): string {
  const sample = text.replace(/\s+/g, ' ').trim().slice(0, 80);
  return `${contentType || 'no content-type'}${sample ? `: "${sample}"` : ', empty'}`;
}
