/**
 * SMART Backend Services per server (issue 10 items 2 and 9): client_credentials with a private_key_jwt
 * assertion signed RS384 or ES384, against a real OAuth 2 authorization server (oidc-provider, not
 * written here) whose introspection endpoint the loopback FHIR server asks about every request's
 * token. Tokens are cached across Bundles, renewed before they expire and after a 401; a token endpoint
 * that refuses, cannot be reached or answers HTML is a clear error for that server, nothing is taken as
 * sent, and another server drains as usual.
 */
import { generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FhirSyncEngine } from '../../src/main/fhir/sync/sync-engine.js';
import { resolveServers, syncServerSettingsSchema, type SyncServer } from '../../src/main/fhir/sync/settings.js';
import { clientAssertion } from '../../src/main/fhir/sync/smart-auth.js';
import { FhirValidator } from '../../src/main/fhir/validation.js';
import { Outbox } from '../../src/main/store/outbox.js';
import { tempDir } from '../support/harness.js';
import { startLoopbackFhirServer, type LoopbackFhirServer } from '../support/fhir-server.js';
import { freePort } from '../support/net.js';
import { startLoopbackOAuthServer, type LoopbackOAuthServer } from '../support/oauth-server.js';
import { openTestStore, testPatient } from '../support/sync-rig.js';

let dir: string;
let oauth: LoopbackOAuthServer;
/** Accepts only tokens the provider says are active; publishes the provider's token endpoint. */
let fhir: LoopbackFhirServer;
/** A second server without authentication (the regional registry): it must not notice the first one's trouble. */
let registry: LoopbackFhirServer;
/** The same FHIR server with no smart-configuration (discovery must fail clearly). */
let undiscoverable: LoopbackFhirServer;
let htmlServer: http.Server;
let htmlUrl: string;
const authorizations: (string | undefined)[] = [];
const keys: Record<'rsa' | 'ec' | 'stranger' | 'p256', { file: string; privateKey: KeyObject; publicKey: KeyObject }> = {} as never;
const validator = new FhirValidator();

function keyPair(name: keyof typeof keys, kind: 'rsa' | 'ec', curve?: string) {
  const pair = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: curve ?? 'P-384' });
  const file = path.join(dir, `${name}.pem`);
  writeFileSync(file, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  keys[name] = { file, ...pair };
}

function jwk(publicKey: KeyObject, kid: string, alg: string) {
  return { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

beforeAll(async () => {
  dir = tempDir('nw-smart-');
  keyPair('rsa', 'rsa');
  keyPair('ec', 'ec');
  keyPair('stranger', 'rsa');
  keyPair('p256', 'ec', 'P-256');
  oauth = await startLoopbackOAuthServer([
    { clientId: 'workstation-rs', alg: 'RS384', jwks: [jwk(keys.rsa.publicKey, 'rs-1', 'RS384')] },
    { clientId: 'workstation-es', alg: 'ES384', jwks: [jwk(keys.ec.publicKey, 'es-1', 'ES384')] },
  ]);
  fhir = await startLoopbackFhirServer({
    recordRequests: true,
    authorize: async (authorization) => {
      authorizations.push(authorization);
      return oauth.introspect(authorization);
    },
    smartConfiguration: {
      token_endpoint: oauth.tokenUrl,
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    },
  });
  registry = await startLoopbackFhirServer();
  undiscoverable = await startLoopbackFhirServer({ authorize: (a) => oauth.introspect(a) });
  htmlServer = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html><body>Welcome to the portal</body></html>');
  });
  await new Promise<void>((resolve) => htmlServer.listen(0, '127.0.0.1', () => resolve()));
  htmlUrl = `http://127.0.0.1:${(htmlServer.address() as AddressInfo).port}/oauth/token`;
});

afterAll(async () => {
  htmlServer?.closeAllConnections();
  await new Promise((resolve) => htmlServer?.close(resolve));
  await Promise.all([fhir?.close(), registry?.close(), undiscoverable?.close(), oauth?.close()]);
});

function smartServer(auth: Record<string, unknown>, over: Record<string, unknown> = {}): SyncServer {
  return resolveServers([syncServerSettingsSchema.parse({ name: 'hospital', baseUrl: fhir.baseUrl, auth: { kind: 'smart-backend', ...auth }, ...over })], {})[0]!;
}

const RS = () => ({ clientId: 'workstation-rs', privateKeyFile: keys.rsa.file, kid: 'rs-1' });
const ES = () => ({ clientId: 'workstation-es', privateKeyFile: keys.ec.file, kid: 'es-1', tokenUrl: oauth.tokenUrl });

/** A store with `count` new patients queued; the engine for the given servers. */
function queued(prefix: string, count: number, servers: SyncServer[]) {
  const { db } = openTestStore();
  const outbox = new Outbox(db, () => new Date());
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
  db.transaction(() => ids.forEach((id) => outbox.enqueue('create', testPatient(id, 'Smart'))))();
  const engine = new FhirSyncEngine({ db, servers, validator });
  return {
    ids,
    engine,
    queue: (more: string[]) => db.transaction(() => more.forEach((id) => outbox.enqueue('create', testPatient(id, 'Smart'))))(),
    close: async () => {
      await engine.close();
      db.close();
    },
  };
}

const onServer = (server: LoopbackFhirServer, ids: string[]) => ids.filter((id) => server.repo.current('Patient', id) !== null).length;

describe('SMART Backend Services against oidc-provider', () => {
  it('RS384, token URL discovered from smart-configuration: 6 Bundles, 1 token request; more Bundles later reuse it', async () => {
    const before = { tokens: oauth.tokenRequests, requests: fhir.requests.length };
    const run = queued('smart-rs', 120, [smartServer(RS(), { maxBundleEntries: 20 })]);
    try {
      const report = (await run.engine.runOnce()).servers[0]!;
      expect(report).toMatchObject({ state: 'drained', sent: 120, requests: 6, error: null });
      expect(onServer(fhir, run.ids)).toBe(120);
      expect(oauth.tokenRequests - before.tokens).toBe(1);
      const batches = fhir.requests.slice(before.requests).filter((r) => r.method === 'POST');
      expect(batches.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);

      const more = Array.from({ length: 40 }, (_, i) => `smart-rs-more-${i}`);
      run.queue(more);
      expect((await run.engine.runOnce()).servers[0]).toMatchObject({ state: 'drained', sent: 40, requests: 2 });
      expect(onServer(fhir, more)).toBe(40);
      expect(oauth.tokenRequests - before.tokens).toBe(1);
    } finally {
      await run.close();
    }
  });

  it('ES384 with a configured token URL and kid', async () => {
    const before = oauth.tokenRequests;
    const run = queued('smart-es', 30, [smartServer(ES(), { maxBundleEntries: 10 })]);
    try {
      expect((await run.engine.runOnce()).servers[0]).toMatchObject({ state: 'drained', sent: 30, requests: 3 });
      expect(onServer(fhir, run.ids)).toBe(30);
      expect(oauth.tokenRequests - before).toBe(1);
    } finally {
      await run.close();
    }
  });

  it('a token about to expire is renewed before use; a revoked one gets one new token and one retry after the 401', async () => {
    oauth.ttlSeconds = 2;
    const before = { tokens: oauth.tokenRequests, issued: oauth.issued };
    const run = queued('smart-ttl', 5, [smartServer(RS())]);
    try {
      expect((await run.engine.runOnce()).servers[0]).toMatchObject({ state: 'drained', sent: 5 });
      const firstIssuedBy = Date.now();
      const first = authorizations.at(-1)!;
      // Reused until a fifth of its 2 s lifetime is left (1.6 s after it was asked for); then a new one.
      oauth.ttlSeconds = 300;
      await new Promise((resolve) => setTimeout(resolve, 1_800));
      run.queue(['smart-ttl-late']);
      expect((await run.engine.runOnce()).servers[0]).toMatchObject({ state: 'drained', sent: 1 });
      expect(oauth.tokenRequests - before.tokens).toBe(2);
      const second = authorizations.at(-1)!;
      expect(second).not.toBe(first);
      // The provider's exp is in whole seconds (iat + 2, expired once the clock reaches it): by 2 s after the
      // first run it has expired whatever the rounding, though the renewal came earlier.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstIssuedBy + 2_100 - Date.now())));
      expect(await oauth.introspect(first)).toBe(false); // the provider agrees the first one has expired

      await oauth.revoke(second.slice('Bearer '.length));
      const requestsBefore = fhir.requests.length;
      run.queue(['smart-ttl-revoked']);
      expect((await run.engine.runOnce()).servers[0]).toMatchObject({ state: 'drained', sent: 1, requests: 1 });
      // The Bundle (POST): refused with the revoked token, accepted with the new one. (GETs are the pull's.)
      expect(fhir.requests.slice(requestsBefore).filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([401, 200]);
      expect(oauth.tokenRequests - before.tokens).toBe(3);
      expect(oauth.issued - before.issued).toBe(3);
      expect(onServer(fhir, [...run.ids, 'smart-ttl-late', 'smart-ttl-revoked'])).toBe(7);
    } finally {
      oauth.ttlSeconds = 300;
      await run.close();
    }
  });

  it('a refused client (signed with a key it did not register): the error quotes the token endpoint, nothing sent, the other server drains', async () => {
    const fhirRequests = () => fhir.requests.filter((r) => !r.url.includes('/.well-known/')).length;
    const before = fhirRequests();
    const hospital = smartServer({ clientId: 'workstation-rs', privateKeyFile: keys.stranger.file, kid: 'rs-1' });
    const regional = resolveServers([syncServerSettingsSchema.parse({ name: 'registry', baseUrl: registry.baseUrl })], {})[0]!;
    const run = queued('smart-refused', 3, [hospital, regional]);
    try {
      const report = await run.engine.runOnce();
      const [failed, drained] = report.servers;
      expect(failed).toMatchObject({ server: 'hospital', state: 'failed', sent: 0 });
      expect(failed!.error).toBe(`hospital: POST batch Bundle of 3: no access token: the token endpoint ${oauth.tokenUrl} refused client "workstation-rs" (HTTP 401, invalid_client: client authentication failed)`);
      expect(drained).toMatchObject({ server: 'registry', state: 'drained', sent: 3 });
      expect(onServer(registry, run.ids)).toBe(3);
      expect(onServer(fhir, run.ids)).toBe(0);
      expect(fhirRequests()).toBe(before); // not one FHIR request without a token
      const status = run.engine.status().find((s) => s.name === 'hospital')!;
      expect(status).toMatchObject({ pending: 3, inDoubt: 0, consecutiveFailures: 1, lastError: failed!.error });
      expect(status.nextAttemptAt).not.toBeNull();
    } finally {
      await run.close();
    }
  });

  it('an unregistered client id, a token endpoint that cannot be reached, one that answers HTML, a server with no smart-configuration: clear errors, rows pending', async () => {
    const closedPort = await freePort();
    const cases: { server: SyncServer; error: string }[] = [
      { server: smartServer({ ...ES(), clientId: 'workstation-unknown' }), error: `the token endpoint ${oauth.tokenUrl} refused client "workstation-unknown" (HTTP 401, invalid_client: client authentication failed)` },
      { server: smartServer({ ...RS(), tokenUrl: `http://127.0.0.1:${closedPort}/token` }), error: `cannot reach the token endpoint http://127.0.0.1:${closedPort}/token (ECONNREFUSED)` },
      { server: smartServer({ ...RS(), tokenUrl: htmlUrl }), error: `the token endpoint ${htmlUrl} answered with text/html: "<html><body>Welcome to the portal</body></html>", not an OAuth token response` },
      {
        server: resolveServers([syncServerSettingsSchema.parse({ name: 'hospital', baseUrl: undiscoverable.baseUrl, auth: { kind: 'smart-backend', ...RS() } })], {})[0]!,
        error: `no tokenUrl is configured and ${undiscoverable.baseUrl}/.well-known/smart-configuration answered HTTP 401`,
      },
    ];
    for (const [i, { server, error }] of cases.entries()) {
      const run = queued(`smart-bad-${i}`, 2, [server]);
      try {
        const report = (await run.engine.runOnce()).servers[0]!;
        expect(report).toMatchObject({ state: 'failed', sent: 0 });
        expect(report.error).toBe(`hospital: POST batch Bundle of 2: no access token: ${error}`);
        expect(run.engine.status()[0]).toMatchObject({ pending: 2, inDoubt: 0 });
      } finally {
        await run.close();
      }
    }
  });
});

describe('SMART over HTTPS', () => {
  it("the token endpoint is reached with the server's TLS settings: its CA file trusted, else a clear certificate error", async () => {
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=NeuroWard SMART test CA');
    writeFileSync(path.join(dir, 'auth.ext'), 'subjectAltName=IP:127.0.0.1\n');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'auth.key', '-out', 'auth.csr', '-subj', '/CN=127.0.0.1');
    openssl('x509', '-req', '-in', 'auth.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'auth.pem', '-days', '2', '-extfile', 'auth.ext');
    const read = (name: string) => readFileSync(path.join(dir, name), 'utf8');
    const secureAuth = await startLoopbackOAuthServer([{ clientId: 'workstation-tls', alg: 'ES384', jwks: [jwk(keys.ec.publicKey, 'tls-1', 'ES384')] }], { tls: { cert: read('auth.pem'), key: read('auth.key'), ca: read('ca.pem') } });
    const guarded = await startLoopbackFhirServer({ authorize: (a) => secureAuth.introspect(a) });
    try {
      const server = (tls: Record<string, unknown> | undefined) =>
        resolveServers([syncServerSettingsSchema.parse({ name: 'hospital', baseUrl: guarded.baseUrl, auth: { kind: 'smart-backend', clientId: 'workstation-tls', privateKeyFile: keys.ec.file, kid: 'tls-1', tokenUrl: secureAuth.tokenUrl }, ...(tls ? { tls } : {}) })], {})[0]!;
      const untrusted = queued('smart-tls-untrusted', 1, [server(undefined)]);
      try {
        const report = (await untrusted.engine.runOnce()).servers[0]!;
        expect(report.error).toMatch(new RegExp(`^hospital: POST batch Bundle of 1: no access token: cannot reach the token endpoint ${secureAuth.tokenUrl.replace(/[.]/g, '\\.')} \\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)\\)$`));
        expect(guarded.repo.current('Patient', untrusted.ids[0]!)).toBeNull();
      } finally {
        await untrusted.close();
      }
      const trusted = queued('smart-tls-trusted', 4, [server({ caFile: path.join(dir, 'ca.pem') })]);
      try {
        expect((await trusted.engine.runOnce()).servers[0]).toMatchObject({ state: 'drained', sent: 4 });
        expect(onServer(guarded, trusted.ids)).toBe(4);
        expect(secureAuth.tokenRequests).toBe(1);
      } finally {
        await trusted.close();
      }
    } finally {
      await Promise.all([guarded.close(), secureAuth.close()]);
    }
  });
});

describe('client assertion and settings', () => {
  it('the assertion: header alg/kid/typ, iss = sub = client id, aud = token URL, exp at most 5 minutes ahead, a new jti each time, a valid signature', () => {
    const tokenUrl = 'https://auth.example.org/token';
    const now = Date.parse('2026-12-02T10:00:00Z');
    const credentials = smartServer(ES()).auth as Extract<SyncServer['auth'], { kind: 'smart-backend' }>;
    const [a, b] = [clientAssertion(credentials, tokenUrl, now), clientAssertion(credentials, tokenUrl, now)];
    const [header, claims, signature] = a.split('.');
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toEqual({ alg: 'ES384', typ: 'JWT', kid: 'es-1' });
    const payload = JSON.parse(Buffer.from(claims!, 'base64url').toString()) as Record<string, unknown>;
    expect(payload).toMatchObject({ iss: 'workstation-es', sub: 'workstation-es', aud: tokenUrl, iat: now / 1000 });
    expect((payload.exp as number) - now / 1000).toBeGreaterThan(0);
    expect((payload.exp as number) - now / 1000).toBeLessThanOrEqual(300);
    expect(payload.jti).not.toBe(JSON.parse(Buffer.from(b.split('.')[1]!, 'base64url').toString()).jti);
    // ES384 in JWS: a 96-byte r||s signature over "header.claims" with SHA-384.
    expect(Buffer.from(signature!, 'base64url').length).toBe(96);
    expect(verify('sha384', Buffer.from(`${header}.${claims}`), { key: keys.ec.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature!, 'base64url'))).toBe(true);
  });

  it('alg from the key, scope default, and clear errors for a wrong alg, a P-256 key, an unreadable key file', () => {
    const rs = smartServer({ clientId: 'c', privateKeyFile: keys.rsa.file }).auth;
    expect(rs).toMatchObject({ kind: 'smart-backend', clientId: 'c', alg: 'RS384', tokenUrl: null, kid: null, scope: 'system/*.cruds' });
    expect(() => smartServer({ clientId: 'c', privateKeyFile: keys.rsa.file, alg: 'ES384' })).toThrow(`FHIR server "hospital": SMART private key ${keys.rsa.file}: alg ES384 does not match the private key, which signs RS384`);
    expect(() => smartServer({ clientId: 'c', privateKeyFile: keys.p256.file })).toThrow(/SMART Backend Services signs with RS384 \(an RSA key\) or ES384 \(an EC key on P-384\)/);
    expect(() => smartServer({ clientId: 'c', privateKeyFile: '/nonexistent/key.pem' })).toThrow(/FHIR server "hospital": cannot read the SMART private key \/nonexistent\/key\.pem/);
    expect(syncServerSettingsSchema.safeParse({ name: 'x', baseUrl: 'https://e.org', auth: { kind: 'smart-backend', clientId: 'c' } }).success).toBe(false);

    // An encrypted PEM: its passphrase by environment variable, never in the file.
    const encrypted = path.join(dir, 'encrypted.pem');
    writeFileSync(encrypted, keys.ec.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'key passphrase 1' }));
    const settings = syncServerSettingsSchema.parse({ name: 'hospital', baseUrl: fhir.baseUrl, auth: { kind: 'smart-backend', clientId: 'c', privateKeyFile: encrypted, privateKeyPassphraseEnv: 'NW_SMART_KEY_PASSPHRASE' } });
    expect(resolveServers([settings], { NW_SMART_KEY_PASSPHRASE: 'key passphrase 1' })[0]!.auth).toMatchObject({ kind: 'smart-backend', alg: 'ES384' });
    expect(() => resolveServers([settings], {})).toThrow('FHIR server "hospital": environment variable NW_SMART_KEY_PASSPHRASE (private key passphrase) is empty');
    expect(() => resolveServers([settings], { NW_SMART_KEY_PASSPHRASE: 'wrong' })).toThrow(new RegExp(`^FHIR server "hospital": SMART private key ${encrypted.replace(/[.]/g, '\\.')}: the private key is not a readable PEM key`));
    expect(syncServerSettingsSchema.safeParse({ name: 'x', baseUrl: 'https://e.org', auth: { kind: 'smart-backend', clientId: 'c', privateKeyFile: 'k.pem', alg: 'RS256' } }).success).toBe(false);
  });
});
