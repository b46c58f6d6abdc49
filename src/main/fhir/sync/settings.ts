/**
 * What the sync engine needs to know about each remote FHIR server, and the engine's policies. The
 * settings file names secrets by environment variable or file (never the secret itself); `resolveServers`
 * reads them once, at start, into SyncServer values the engine uses.
 *
 * Routing: `resourceTypes` lists the types a server receives ('*' = all). A vital-signs transaction
 * Bundle in the outbox is routed entry by entry (its Observations go where Observations go).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_SMART_SCOPE, smartSigningKey, type SmartBackendCredentials } from './smart-auth.js';
import { DEFAULT_PULL_OVERLAP_MS, DEFAULT_PULL_PAGE_SIZE, PULL_TYPES, type PullType } from './pull-store.js';

const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name');

export const syncServerSettingsSchema = z.strictObject({
  /** Unique; keys the server's cursor and versions in the store, so renaming a server starts it afresh. */
  name: z.string().min(1).max(64),
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  resourceTypes: z.union([z.literal('*'), z.array(z.string().regex(/^[A-Z][A-Za-z]+$/, 'a FHIR resource type')).min(1)]).default('*'),
  auth: z
    .discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('none') }),
      z.strictObject({ kind: z.literal('basic'), username: z.string().min(1), passwordEnv: envName }),
      z.strictObject({ kind: z.literal('bearer'), tokenEnv: envName }),
      /** SMART Backend Services: client_credentials with a private_key_jwt assertion (smart-auth.ts). */
      z.strictObject({
        kind: z.literal('smart-backend'),
        clientId: z.string().min(1),
        /** Default: the `token_endpoint` of `<baseUrl>/.well-known/smart-configuration`. */
        tokenUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
        /** PEM private key (RSA for RS384, EC P-384 for ES384); the clinic registered its public key. */
        privateKeyFile: z.string().min(1),
        /** Only for an encrypted PEM key. */
        privateKeyPassphraseEnv: envName.optional(),
        /** Default: from the key's type. */
        alg: z.enum(['RS384', 'ES384']).optional(),
        /** The `kid` of the registered public key in the clinic's JWKS. */
        kid: z.string().min(1).optional(),
        scope: z.string().regex(/^\S+( \S+)*$/, 'space-separated scopes').default(DEFAULT_SMART_SCOPE),
      }),
    ])
    .default({ kind: 'none' }),
  tls: z
    .strictObject({
      /** PEM file of the CA(s) that signed the server's certificate, instead of the system's. */
      caFile: z.string().min(1).optional(),
      /** Client certificate and key (PEM), for servers that require mutual TLS. */
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
    })
    .refine((tls) => Boolean(tls.certFile) === Boolean(tls.keyFile), 'certFile and keyFile go together')
    .optional(),
  /** `batch` gives each entry its own outcome; `transaction` is all-or-nothing on servers that roll back. */
  bundleType: z.enum(['batch', 'transaction']).default('batch'),
  maxBundleEntries: z.number().int().min(1).max(1000).default(100),
  timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  pipelineDepth: z.number().int().min(1).max(8).default(2),
  /**
   * Incremental pull (pull.ts). Absent: the pull types this server receives (resourceTypes) are pulled
   * with the defaults; false: nothing is pulled from it.
   */
  pull: z
    .union([
      z.literal(false),
      z.strictObject({
        resourceTypes: z.array(z.enum(PULL_TYPES)).min(1).optional(),
        pageSize: z.number().int().min(1).max(1000).default(DEFAULT_PULL_PAGE_SIZE),
        /** Re-read this much before the cursor (late commits on the server); what is held is skipped by version. */
        overlapMs: z.number().int().min(0).max(24 * 3_600_000).default(DEFAULT_PULL_OVERLAP_MS),
      }),
    ])
    .optional(),
});
export type SyncServerSettings = z.infer<typeof syncServerSettingsSchema>;

export type SyncAuth = { kind: 'none' } | { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string } | SmartBackendCredentials;

/** One server as the engine uses it: settings with their secrets read. */
export interface SyncServer {
  name: string;
  baseUrl: string;
  /** '*' or the resource types this server receives. */
  resourceTypes: '*' | readonly string[];
  auth: SyncAuth;
  tls: { ca?: string; cert?: string; key?: string } | null;
  bundleType: 'batch' | 'transaction';
  maxBundleEntries: number;
  timeoutMs: number;
  /** `bundle` (the default) or one HTTP request per resource (the benchmark's comparison; servers without batch support). */
  requestMode: 'bundle' | 'per-resource';
  /** Bundles on the wire at once (never two holding the same resource, or one referring to another's). */
  pipelineDepth: number;
  /** Incremental pull from this server; null: none. */
  pull: PullSettings | null;
}

export interface PullSettings {
  resourceTypes: readonly PullType[];
  /** `_count` of each search page. */
  pageSize: number;
  overlapMs: number;
}

export const DEFAULT_MAX_BUNDLE_ENTRIES = 100;
/** Two Bundles on the wire: the workstation prepares and records one while the server works on the other. */
export const DEFAULT_PIPELINE_DEPTH = 2;

/** A server with defaults filled in; for tests and callers that build servers in code. */
export function syncServer(server: Pick<SyncServer, 'name' | 'baseUrl'> & Partial<SyncServer>): SyncServer {
  return {
    resourceTypes: '*',
    auth: { kind: 'none' },
    tls: null,
    bundleType: 'batch',
    maxBundleEntries: DEFAULT_MAX_BUNDLE_ENTRIES,
    timeoutMs: 30_000,
    requestMode: 'bundle',
    pipelineDepth: DEFAULT_PIPELINE_DEPTH,
    // Servers built in code (tests, the benchmark) pull only when given `pull`; the settings file's default is to pull.
    pull: null,
    ...server,
  };
}

/** Reads each server's secrets (environment, files) once; a missing one names the setting. */
export function resolveServers(settings: readonly SyncServerSettings[], env: NodeJS.ProcessEnv = process.env): SyncServer[] {
  const names = new Set<string>();
  return settings.map((s) => {
    if (names.has(s.name)) throw new Error(`FHIR server name "${s.name}" is used twice: each server needs its own name`);
    names.add(s.name);
    const secret = (variable: string, what: string): string => {
      const value = env[variable];
      if (!value) throw new Error(`FHIR server "${s.name}": environment variable ${variable} (${what}) is empty`);
      return value;
    };
    const read = (file: string | undefined, what: string): string | undefined => {
      if (!file) return undefined;
      try {
        return readFileSync(file, 'utf8');
      } catch (error) {
        throw new Error(`FHIR server "${s.name}": cannot read the ${what} ${file}: ${(error as Error).message}`);
      }
    };
    const smartBackend = (a: Extract<SyncServerSettings['auth'], { kind: 'smart-backend' }>): SmartBackendCredentials => {
      const pem = read(a.privateKeyFile, 'SMART private key')!;
      let key: ReturnType<typeof smartSigningKey>;
      try {
        key = smartSigningKey(pem, a.alg, a.privateKeyPassphraseEnv ? secret(a.privateKeyPassphraseEnv, 'private key passphrase') : undefined);
      } catch (error) {
        throw new Error(`FHIR server "${s.name}": SMART private key ${a.privateKeyFile}: ${(error as Error).message}`);
      }
      return { kind: 'smart-backend', clientId: a.clientId, tokenUrl: a.tokenUrl ?? null, privateKey: key.privateKey, alg: key.alg, kid: a.kid ?? null, scope: a.scope };
    };
    const auth: SyncAuth =
      s.auth.kind === 'basic'
        ? { kind: 'basic', username: s.auth.username, password: secret(s.auth.passwordEnv, 'password') }
        : s.auth.kind === 'bearer'
          ? { kind: 'bearer', token: secret(s.auth.tokenEnv, 'bearer token') }
          : s.auth.kind === 'smart-backend'
            ? smartBackend(s.auth)
            : { kind: 'none' };
    const ca = read(s.tls?.caFile, 'CA file');
    const cert = read(s.tls?.certFile, 'client certificate');
    const key = read(s.tls?.keyFile, 'client key');
    return syncServer({
      name: s.name,
      baseUrl: s.baseUrl.replace(/\/+$/, ''),
      resourceTypes: s.resourceTypes,
      auth,
      tls: ca || cert || key ? { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } : null,
      bundleType: s.bundleType,
      maxBundleEntries: s.maxBundleEntries,
      timeoutMs: s.timeoutMs,
      pipelineDepth: s.pipelineDepth,
      pull: pullSettings(s),
    });
  });
}

/** How the engine retries, and how long it keeps what it sent. */
export interface SyncPolicy {
  /** First retry after a failure of the whole server (link down, 5xx, 429 without Retry-After). */
  backoffBaseMs: number;
  /** The longest wait between attempts (a server's Retry-After is honoured even when longer). */
  backoffMaxMs: number;
  /** A single entry that keeps failing with 5xx while the rest of its Bundle succeeds becomes a dead letter after this many tries. */
  maxEntryAttempts: number;
  /** Sent (retired) outbox rows are deleted after this long. */
  keepRetiredMs: number;
  /** Confirmed versions of Observations and AuditEvents (written once, never edited) are forgotten after this long. */
  keepAppendOnlyVersionsMs: number;
}

export const DEFAULT_SYNC_POLICY: SyncPolicy = {
  backoffBaseMs: 2_000,
  backoffMaxMs: 15 * 60_000,
  maxEntryAttempts: 8,
  keepRetiredMs: 7 * 24 * 3_600_000,
  keepAppendOnlyVersionsMs: 30 * 24 * 3_600_000,
};

/** The pull of a server from its settings: by default the pull types it receives. */
export function pullSettings(s: Pick<SyncServerSettings, 'resourceTypes' | 'pull'>): PullSettings | null {
  if (s.pull === false) return null;
  const resourceTypes = s.pull?.resourceTypes ?? PULL_TYPES.filter((type) => routes(s, type));
  if (resourceTypes.length === 0) return null;
  return { resourceTypes, pageSize: s.pull?.pageSize ?? DEFAULT_PULL_PAGE_SIZE, overlapMs: s.pull?.overlapMs ?? DEFAULT_PULL_OVERLAP_MS };
}

export function routes(server: Pick<SyncServer, 'resourceTypes'>, resourceType: string): boolean {
  return server.resourceTypes === '*' || server.resourceTypes.includes(resourceType);
}
