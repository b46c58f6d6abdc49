/**
 * Per-server authentication and TLS (issue 10 item 2): bearer and basic credentials from the
 * environment, a private CA file, a client certificate for mutual TLS. An HTTPS front (node:https, a
 * certificate signed by a CA made here with openssl) checks the credentials and forwards to the loopback
 * FHIR server. A refused certificate or credential is a clear error for that server, and nothing is
 * taken as sent.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FhirSyncEngine } from '../../src/main/fhir/sync/sync-engine.js';
import { resolveServers, syncServerSettingsSchema, type SyncServer } from '../../src/main/fhir/sync/settings.js';
import { FhirValidator } from '../../src/main/fhir/validation.js';
import { Outbox } from '../../src/main/store/outbox.js';
import { tempDir } from '../support/harness.js';
import { startLoopbackFhirServer, type LoopbackFhirServer } from '../support/fhir-server.js';
import { openTestStore, testPatient } from '../support/sync-rig.js';

let dir: string;
let fhir: LoopbackFhirServer;
let front: https.Server;
let frontUrl: string;
const seen: { authorization: string | undefined; clientCert: boolean }[] = [];
const ACCEPTED = new Set(['Bearer bearer-secret-1', `Basic ${Buffer.from('sync-user:basic-secret-2').toString('base64')}`]);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

beforeAll(async () => {
  dir = tempDir('nw-sync-tls-');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=NeuroWard test CA');
  writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=workstation-1');
  openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2');

  fhir = await startLoopbackFhirServer();
  const upstream = new URL(fhir.baseUrl);
  front = https.createServer(
    { key: readFileSync(path.join(dir, 'server.key')), cert: readFileSync(path.join(dir, 'server.pem')), ca: readFileSync(path.join(dir, 'ca.pem')), requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const clientCert = (req.socket as TLSSocket).authorized;
      seen.push({ authorization: req.headers.authorization, clientCert });
      if (!ACCEPTED.has(req.headers.authorization ?? '')) {
        res.writeHead(401, { 'content-type': 'application/fhir+json', 'www-authenticate': 'Bearer' });
        res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login', details: { text: 'Unauthorized' } }] }));
        return;
      }
      const out = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(out);
    },
  );
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', () => resolve()));
  frontUrl = `https://127.0.0.1:${(front.address() as AddressInfo).port}${upstream.pathname}`;
});

afterAll(async () => {
  front?.closeAllConnections();
  await new Promise((resolve) => front?.close(resolve));
  await fhir?.close();
});

async function syncOnce(server: SyncServer, patientId: string) {
  const { db } = openTestStore();
  db.transaction(() => new Outbox(db, () => new Date()).enqueue('create', testPatient(patientId, 'Tls')))();
  const engine = new FhirSyncEngine({ db, servers: [server], validator: new FhirValidator() });
  const report = await engine.runOnce();
  const status = engine.status()[0]!;
  await engine.close();
  db.close();
  return { report: report.servers[0]!, status };
}

function settings(over: Record<string, unknown>) {
  return syncServerSettingsSchema.parse({ name: 'hospital', baseUrl: frontUrl, ...over });
}

describe('TLS and authentication per server', () => {
  it('bearer token from the environment, private CA file: sent, and the server saw the token', async () => {
    const [server] = resolveServers([settings({ auth: { kind: 'bearer', tokenEnv: 'NW_TEST_FHIR_TOKEN' }, tls: { caFile: path.join(dir, 'ca.pem') } })], { NW_TEST_FHIR_TOKEN: 'bearer-secret-1' });
    const { report, status } = await syncOnce(server!, 'tls-bearer');
    expect(report).toMatchObject({ state: 'drained', sent: 1 });
    expect(status.pending).toBe(0);
    expect(fhir.repo.current('Patient', 'tls-bearer')).not.toBeNull();
    expect(seen.at(-1)!.authorization).toBe('Bearer bearer-secret-1');
  });

  it('basic credentials and a client certificate (mutual TLS)', async () => {
    const [server] = resolveServers(
      [settings({ auth: { kind: 'basic', username: 'sync-user', passwordEnv: 'NW_TEST_FHIR_PASSWORD' }, tls: { caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'client.pem'), keyFile: path.join(dir, 'client.key') } })],
      { NW_TEST_FHIR_PASSWORD: 'basic-secret-2' },
    );
    const { report } = await syncOnce(server!, 'tls-basic');
    expect(report).toMatchObject({ state: 'drained', sent: 1 });
    expect(seen.at(-1)).toEqual({ authorization: `Basic ${Buffer.from('sync-user:basic-secret-2').toString('base64')}`, clientCert: true });
  });

  it('a server certificate no configured CA signed: a clear error, never sent, nothing in doubt', async () => {
    const [server] = resolveServers([settings({ auth: { kind: 'bearer', tokenEnv: 'T' } })], { T: 'bearer-secret-1' });
    const before = seen.length;
    const { report, status } = await syncOnce(server!, 'tls-untrusted');
    expect(report.state).toBe('failed');
    expect(report.error).toMatch(/^hospital: POST batch Bundle of 1: cannot reach https:\/\/127\.0\.0\.1:\d+\/fhir\/R4 \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)\)$/);
    expect(status).toMatchObject({ pending: 1, inDoubt: 0 });
    expect(seen.length).toBe(before);
    expect(fhir.repo.current('Patient', 'tls-untrusted')).toBeNull();
  });

  it('a refused credential: HTTP 401 for that server, the row stays pending', async () => {
    const [server] = resolveServers([settings({ auth: { kind: 'bearer', tokenEnv: 'T' }, tls: { caFile: path.join(dir, 'ca.pem') } })], { T: 'expired-token' });
    const { report, status } = await syncOnce(server!, 'tls-refused');
    expect(report.state).toBe('failed');
    expect(report.error).toBe('hospital: POST batch Bundle of 1: HTTP 401: Unauthorized');
    expect(status).toMatchObject({ pending: 1 });
    expect(fhir.repo.current('Patient', 'tls-refused')).toBeNull();
  });
});

describe('server settings', () => {
  it('defaults: every resource type, no auth, batch Bundles of at most 100, two on the wire', () => {
    const [server] = resolveServers([syncServerSettingsSchema.parse({ name: 'registry', baseUrl: 'https://fhir.example.org/r4/' })]);
    expect(server).toEqual({
      name: 'registry',
      baseUrl: 'https://fhir.example.org/r4',
      resourceTypes: '*',
      auth: { kind: 'none' },
      tls: null,
      bundleType: 'batch',
      maxBundleEntries: 100,
      timeoutMs: 30_000,
      requestMode: 'bundle',
      pipelineDepth: 2,
      // Issue 10 item 4: the seven pull types, from a server that receives them.
      pull: { resourceTypes: ['Patient', 'Practitioner', 'PractitionerRole', 'Location', 'Appointment', 'Schedule', 'Slot'], pageSize: 100, overlapMs: 5_000 },
    });
  });

  it('names the missing secret, the unreadable file, the duplicate name and the bad setting', () => {
    expect(() => resolveServers([settings({ auth: { kind: 'bearer', tokenEnv: 'NW_MISSING_TOKEN' } })], {})).toThrow('FHIR server "hospital": environment variable NW_MISSING_TOKEN (bearer token) is empty');
    expect(() => resolveServers([settings({ tls: { caFile: '/nonexistent/ca.pem' } })], {})).toThrow(/FHIR server "hospital": cannot read the CA file \/nonexistent\/ca\.pem/);
    expect(() => resolveServers([settings({}), settings({})], {})).toThrow('FHIR server name "hospital" is used twice');
    expect(syncServerSettingsSchema.safeParse({ name: 'x', baseUrl: 'ftp://example.org' }).success).toBe(false);
    expect(syncServerSettingsSchema.safeParse({ name: 'x', baseUrl: 'https://example.org', tls: { certFile: 'c.pem' } }).success).toBe(false);
    expect(syncServerSettingsSchema.safeParse({ name: 'x', baseUrl: 'https://example.org', resourceTypes: ['patient'] }).success).toBe(false);
  });
});
