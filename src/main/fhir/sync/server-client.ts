/**
 * One remote FHIR server over HTTP, through fhir-kit-client (its `httpFor(result)` gives the response
 * headers: ETag, Retry-After). Every answer is checked before the engine believes it: a Bundle response
 * must be a Bundle of the right type with exactly one entry per request, a read must be the resource
 * asked for. Whatever goes wrong becomes a TransportFailure that says what happened, whether the server
 * may have applied the request anyway, and when it asked to be tried again.
 */
import { Client as FhirKitClient } from 'fhir-kit-client';
import { Agent } from 'undici';
import type { Bundle, BundleEntry, OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { SyncServer } from './settings.js';
import { parseRetryAfterMs } from './backoff.js';
import { SmartTokenSource, TokenFailure } from './smart-auth.js';

export type TransportFailureKind =
  /** Connection refused, name not resolved, TLS refused, connection dropped. */
  | 'unreachable'
  | 'timeout'
  /** An HTTP error status for the whole request. */
  | 'http'
  /** Something answered, but not as a FHIR server does (HTML, not JSON, the wrong resource). */
  | 'not-fhir'
  /** A Bundle response that does not answer what was sent (e.g. fewer entries). */
  | 'bad-response'
  /** No access token: the token endpoint refused, could not be reached or did not answer OAuth (SMART Backend Services). Nothing was sent. */
  | 'auth';

export class TransportFailure extends Error {
  constructor(
    readonly kind: TransportFailureKind,
    message: string,
    readonly details: {
      status?: number;
      retryAfterMs?: number | null;
      outcome?: OperationOutcome | null;
      /** The request may have been applied although no usable answer came back. */
      mayHaveApplied: boolean;
    },
  ) {
    super(message);
    this.name = 'TransportFailure';
  }
  get status(): number | null {
    return this.details.status ?? null;
  }
}

/** `Type/id` of a request URL (`Type/id` or `Type/id/_history/vid`). */
function resourceUrl(url: string): string {
  return url.split('/').slice(0, 2).join('/');
}

/** One request of a group: in bundle mode an entry, in per-resource mode its own HTTP request. */
export interface EntryRequest {
  method: 'GET' | 'PUT' | 'DELETE';
  /** `Type/id`, or `Type/id/_history/<vid>` for a GET of one version. */
  url: string;
  resource?: Resource;
  /** Version the server must still hold (sent as If-Match: W/"<versionId>"). */
  ifMatch?: string;
}

/** The server's answer to one request. */
export interface EntryResult {
  status: number;
  /** The version the server now holds for the resource, when it said. */
  versionId: string | null;
  resource: Resource | null;
  outcome: OperationOutcome | null;
}

interface FhirKitError extends Error {
  response?: { status?: number; data?: unknown };
  config?: { headers?: Headers };
}

/** Text of an OperationOutcome's issues, for messages shown to people. */
export function outcomeText(outcome: OperationOutcome | null | undefined): string {
  const issues = outcome?.issue ?? [];
  const texts = issues.map((i) => [i.details?.text ?? i.diagnostics ?? i.code, i.expression?.[0] ? `(at ${i.expression[0]})` : ''].filter(Boolean).join(' '));
  return texts.filter(Boolean).join('; ');
}

function isOutcome(value: unknown): value is OperationOutcome {
  return typeof value === 'object' && value !== null && (value as { resourceType?: unknown }).resourceType === 'OperationOutcome';
}

function versionFromEtag(etag: string | null | undefined): string | null {
  if (!etag) return null;
  const match = /^(?:W\/)?"([^"]+)"$/.exec(etag.trim());
  return match ? match[1]! : null;
}

function statusOf(entryStatus: string | undefined): number {
  const code = Number.parseInt((entryStatus ?? '').trim().split(/\s+/)[0] ?? '', 10);
  return Number.isFinite(code) ? code : 0;
}

function networkCode(error: unknown): string | null {
  let cause: unknown = error;
  for (let depth = 0; depth < 4 && cause; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cause = (cause as { cause?: unknown }).cause;
  }
  return null;
}

/** Codes that prove the request never reached a server. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID']);

export class FhirServerClient {
  private readonly client: FhirKitClient;
  private readonly dispatcher: Agent | null;
  /** SMART Backend Services: access tokens, cached; null for the other kinds of auth. */
  readonly tokens: SmartTokenSource | null;

  constructor(
    private readonly server: SyncServer,
    private readonly now: () => Date,
  ) {
    // fetch (undici) takes TLS settings only through a dispatcher of its own: one per server.
    this.dispatcher = server.tls ? new Agent({ connect: { ...server.tls } }) : null;
    const headers: Record<string, string> = { 'content-type': 'application/fhir+json' };
    if (server.auth.kind === 'basic') headers.authorization = `Basic ${Buffer.from(`${server.auth.username}:${server.auth.password}`).toString('base64')}`;
    this.client = new FhirKitClient({
      baseUrl: server.baseUrl,
      customHeaders: headers,
      ...(server.auth.kind === 'bearer' ? { bearerToken: server.auth.token } : {}),
      // `window: null` with `redirect: 'error'` is the one case in which fetch (undici) sends the Request
      // as built instead of cloning it, body stream tee included (about a tenth of the workstation's CPU
      // per request in bench/fhir-sync). A redirect is then an error ("cannot reach … (unexpected
      // redirect)", kept in doubt), never a POST silently turned into a GET at another address.
      requestOptions: { window: null, redirect: 'error', ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}) },
    });
    // The token endpoint is reached with the server's TLS settings (its CA file, client certificate).
    this.tokens = server.auth.kind === 'smart-backend' ? new SmartTokenSource(server.baseUrl, server.auth, { dispatcher: this.dispatcher, timeoutMs: server.timeoutMs }) : null;
  }

  async close(): Promise<void> {
    await this.dispatcher?.close();
  }

  /** Sends the requests as one batch or transaction Bundle; one result per request, in order. */
  async bundle(type: 'batch' | 'transaction', requests: readonly EntryRequest[]): Promise<EntryResult[]> {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type,
      entry: requests.map((r) => ({
        ...(r.resource ? { fullUrl: `${this.server.baseUrl}/${r.url}`, resource: r.resource } : {}),
        request: { method: r.method, url: r.url, ...(r.ifMatch ? { ifMatch: `W/"${r.ifMatch}"` } : {}) },
      })),
    };
    const answer = await this.call(`POST ${type} Bundle of ${requests.length}`, (options) => (type === 'batch' ? this.client.batch({ body: bundle as never, options }) : this.client.transaction({ body: bundle as never, options })));
    const response = answer.body as unknown as Bundle;
    if (response.resourceType !== 'Bundle') {
      throw new TransportFailure('not-fhir', `answered a ${type} Bundle with ${String(response.resourceType)} instead of a Bundle`, { mayHaveApplied: true });
    }
    if (response.type !== `${type}-response`) {
      throw new TransportFailure('bad-response', `answered a ${type} Bundle with a Bundle of type "${String(response.type)}" instead of "${type}-response"`, { mayHaveApplied: true });
    }
    const entries = response.entry ?? [];
    if (entries.length !== requests.length) {
      // Entries answer requests by position: with any missing, none can be matched to its request.
      throw new TransportFailure('bad-response', `answered a ${type} Bundle of ${requests.length} entries with ${entries.length} entries; nothing in it is taken as done`, { mayHaveApplied: true });
    }
    return entries.map((entry, i) => this.entryResult(entry, requests[i]!));
  }

  private entryResult(entry: BundleEntry, request: EntryRequest): EntryResult {
    const status = statusOf(entry.response?.status);
    const resource = entry.resource && !isOutcome(entry.resource) ? entry.resource : null;
    const outcome = isOutcome(entry.response?.outcome) ? entry.response.outcome : isOutcome(entry.resource) ? entry.resource : null;
    if (status === 0) throw new TransportFailure('bad-response', `a Bundle response entry for ${request.method} ${request.url} has no status`, { mayHaveApplied: true });
    if (resource && status < 300 && `${resource.resourceType}/${resource.id}` !== resourceUrl(request.url)) {
      throw new TransportFailure('bad-response', `the Bundle response entry for ${request.method} ${request.url} holds ${resource.resourceType}/${resource.id ?? '?'}`, { mayHaveApplied: true });
    }
    return { status, versionId: versionFromEtag(entry.response?.etag) ?? resource?.meta?.versionId ?? null, resource, outcome };
  }

  /** One request on its own (per-resource mode, reads, conflict resolution). 4xx answers are results, not failures. */
  async single(request: EntryRequest): Promise<EntryResult> {
    const [resourceType, id, , version] = request.url.split('/') as [string, string, string?, string?];
    const headers: Record<string, string> = request.ifMatch ? { 'if-match': `W/"${request.ifMatch}"` } : {};
    try {
      const answer = await this.call(`${request.method} ${request.url}`, (options) => {
        const withHeaders = { ...options, headers: { ...options.headers, ...headers } };
        if (request.method === 'GET') return version ? this.client.vread({ resourceType, id, version, options: withHeaders }) : this.client.read({ resourceType, id, options: withHeaders });
        if (request.method === 'DELETE') return this.client.delete({ resourceType, id, options: withHeaders });
        return this.client.update({ resourceType, id, body: request.resource as never, options: withHeaders });
      });
      const body = answer.body;
      const resource = typeof body.resourceType === 'string' && !isOutcome(body) ? (body as unknown as Resource) : null;
      if (request.method !== 'DELETE' && (!resource || `${resource.resourceType}/${resource.id}` !== resourceUrl(request.url))) {
        const got = resource ? `${resource.resourceType}/${resource.id ?? '?'}` : typeof body.resourceType === 'string' ? body.resourceType : 'JSON that is not a FHIR resource';
        throw new TransportFailure('not-fhir', `answered ${request.method} ${request.url} with ${got}`, { mayHaveApplied: request.method !== 'GET' });
      }
      return { status: answer.status, versionId: versionFromEtag(answer.etag) ?? resource?.meta?.versionId ?? null, resource, outcome: isOutcome(body) ? body : null };
    } catch (error) {
      // 401/403 are about the credential, not this resource: a failure of the whole server, not an answer.
      if (error instanceof TransportFailure && error.kind === 'http' && error.status !== null && error.status >= 400 && error.status < 500 && error.status !== 429 && error.status !== 401 && error.status !== 403) {
        return { status: error.status, versionId: null, resource: null, outcome: error.details.outcome ?? null };
      }
      throw error;
    }
  }

  /**
   * A type-level search (`Type?params`) for the incremental pull (pull.ts): the answer must be a
   * searchset Bundle; every HTTP error, including 4xx, is a failure (a search that cannot be answered).
   */
  async search(resourceType: string, params: Readonly<Record<string, string>>): Promise<Bundle> {
    const what = `GET ${resourceType}?${new URLSearchParams(params).toString()}`;
    const answer = await this.call(what, (options) => this.client.resourceSearch({ resourceType, searchParams: { ...params }, options }));
    const body = answer.body as unknown as Bundle;
    if (body.resourceType !== 'Bundle' || body.type !== 'searchset') {
      throw new TransportFailure('not-fhir', `${what}: answered with ${String(body.resourceType)}${body.resourceType === 'Bundle' ? ` of type "${String(body.type)}"` : ''} instead of a searchset Bundle`, { mayHaveApplied: false });
    }
    return body;
  }

  /**
   * Runs one fhir-kit-client call with the server's timeout and turns every failure into a TransportFailure.
   * With SMART Backend Services a 401 means the token was revoked or expired early: one new token, one retry
   * (a 401 request was not applied, so resending it is safe).
   */
  private async call(what: string, run: (options: { signal: AbortSignal; headers: Record<string, string> }) => Promise<unknown>): Promise<{ body: Record<string, unknown>; status: number; etag: string | null }> {
    let result: unknown;
    for (let attempt = 0; ; attempt++) {
      const token = await this.accessToken(what);
      try {
        result = await run({ signal: AbortSignal.timeout(this.server.timeoutMs), headers: token ? { authorization: `Bearer ${token}` } : {} });
        break;
      } catch (error) {
        const failure = this.failure(what, error);
        if (token && this.tokens && attempt === 0 && failure.status === 401) {
          this.tokens.invalidate(token);
          continue;
        }
        throw failure;
      }
    }
    const { response } = FhirKitClient.httpFor(result as never);
    const empty = typeof result === 'object' && result !== null && Object.keys(result).length === 0;
    if (typeof result !== 'object' || result === null || Array.isArray(result) || (!empty && response && !/json/i.test(response.headers.get('content-type') ?? ''))) {
      throw new TransportFailure('not-fhir', `${what}: the answer is not FHIR JSON (content-type ${response?.headers.get('content-type') ?? 'none'})`, { mayHaveApplied: true });
    }
    return { body: result as Record<string, unknown>, status: response?.status ?? 200, etag: response?.headers.get('etag') ?? null };
  }

  /** The SMART access token (null for other kinds of auth); no token means nothing is sent. */
  private async accessToken(what: string): Promise<string | null> {
    if (!this.tokens) return null;
    try {
      return await this.tokens.token();
    } catch (error) {
      if (!(error instanceof TokenFailure)) throw error;
      throw new TransportFailure('auth', `${what}: no access token: ${error.message}`, { retryAfterMs: error.retryAfterMs, mayHaveApplied: false });
    }
  }

  private failure(what: string, error: unknown): TransportFailure {
    if (error instanceof TransportFailure) return error;
    const err = error as FhirKitError;
    if (err.name === 'TimeoutError' || err.name === 'AbortError') {
      return new TransportFailure('timeout', `${what}: no answer within ${this.server.timeoutMs} ms`, { mayHaveApplied: true });
    }
    const status = err.response?.status;
    if (typeof status === 'number') {
      const data = err.response?.data;
      const headers = err.config?.headers;
      const contentType = headers?.get?.('content-type') ?? '';
      const retryAfterMs = parseRetryAfterMs(headers?.get?.('retry-after'), this.now());
      if (typeof data === 'string' && data.length > 0 && (status < 400 || !/json/i.test(contentType))) {
        // fhir-kit-client could not parse the body: an HTML page, a proxy's error text, ...
        const sample = data.replace(/\s+/g, ' ').trim().slice(0, 80);
        return new TransportFailure('not-fhir', `${what}: HTTP ${status} with a body that is not FHIR JSON (${contentType || 'no content-type'}: "${sample}")`, {
          status,
          retryAfterMs,
          mayHaveApplied: status < 400 || status >= 500,
        });
      }
      const outcome = isOutcome(data) ? data : null;
      const text = outcomeText(outcome);
      return new TransportFailure('http', `${what}: HTTP ${status}${text ? `: ${text}` : ''}`, { status, retryAfterMs, outcome, mayHaveApplied: status >= 500 });
    }
    const code = networkCode(error);
    const detail = code ?? (err.cause instanceof Error ? err.cause.message : err.message);
    return new TransportFailure('unreachable', `${what}: cannot reach ${this.server.baseUrl} (${detail})`, { mayHaveApplied: !(code && NEVER_SENT.has(code)) });
  }
}
