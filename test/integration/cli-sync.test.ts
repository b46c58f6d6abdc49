/**
 * `neuroward sync status` and `neuroward sync run` (issue 10 item 8), the built CLI on a real store with
 * queued changes, against the real loopback FHIR server (@medplum/fhir-router). Exit codes: 0 every
 * server drained, 1 a server failed or the pass stored a conflict, 2 no server / a bad config / usage.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Patient } from '@medplum/fhirtypes';
import { createApp } from '../../src/main/app/app.js';
import type { AppConfig } from '../../src/main/app/config.js';
import { Outbox } from '../../src/main/store/outbox.js';
import { StoreService } from '../../src/main/store/store-service.js';
import { AuditLedger } from '../../src/main/security/audit-ledger.js';
import { ADMIN, connect, tempDir, testConfig } from '../support/harness.js';
import { startLoopbackFhirServer, type LoopbackFhirServer } from '../support/fhir-server.js';
import { freePort } from '../support/net.js';
import { startLoopbackOAuthServer } from '../support/oauth-server.js';
import { testPatient } from '../support/sync-rig.js';
import { BUILT_CLI, runCli } from '../support/cli-process.js';

const CLI = BUILT_CLI;
const PASSPHRASE = 'cli sync test passphrase';
let config: AppConfig;
let fhir: LoopbackFhirServer;
let configDir: string;
const env = () => ({ ...process.env, NEUROWARD_DATA_DIR: config.dataDir, NEUROWARD_PASSPHRASE_SOURCE: 'env', NEUROWARD_STORE_PASSPHRASE: PASSPHRASE });

function configFile(name: string, servers: unknown[]): string {
  const file = path.join(configDir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ fhir: { servers } }));
  return file;
}
const cli = (...args: string[]) => runCli(args, env());

/** Works on the store directly (the CLI is not running meanwhile), as the app's own code would. */
async function withStore<T>(work: (store: StoreService) => T): Promise<T> {
  const store = new StoreService(config, undefined, () => new Date());
  await store.start();
  try {
    return work(store);
  } finally {
    store.close();
  }
}

async function queuePatients(ids: string[], family = 'Cli'): Promise<void> {
  await withStore((store) => store.transaction(() => ids.forEach((id) => new Outbox(store.db, () => new Date()).enqueue('update', testPatient(id, family)))));
}

interface StatusJson {
  servers: { name: string; baseUrl: string; routing: unknown; pending: number; inDoubt: number; lastSuccessAt: string | null; lastError: string | null; nextAttemptAt: string | null; openConflicts: number; openDeadLetters: number }[];
}

const ids = Array.from({ length: 25 }, (_, i) => `cli-sync-${i + 1}`);
let hospital: string;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
  config = testConfig({}, { NEUROWARD_PASSPHRASE_SOURCE: 'env', NEUROWARD_STORE_PASSPHRASE: PASSPHRASE });
  const app = await createApp({ config, host: 'headless', log: () => undefined, announce: () => undefined });
  await connect(app).ok('setup.initialize', { admin: ADMIN, demoData: false });
  await app.close();
  configDir = tempDir('nw-cli-sync-');
  fhir = await startLoopbackFhirServer();
  hospital = configFile('hospital', [{ name: 'hospital', baseUrl: fhir.baseUrl, resourceTypes: ['Patient'], maxBundleEntries: 10 }]);
  await queuePatients(ids);
});

afterAll(async () => {
  await fhir?.close();
});

describe('neuroward sync', () => {
  it('status before, run (exit 0), status after', async () => {
    const before = await cli('sync', 'status', '--config', hospital);
    expect(before.status, before.stderr).toBe(0);
    expect(before.stdout).toContain(`hospital  ${fhir.baseUrl}\n`);
    expect(before.stdout).toMatch(/^ {2}routing {7}Patient {3}\(auth: none\)$/m);
    expect(before.stdout).toMatch(/^ {2}pending {7}25$/m);
    expect(before.stdout).toMatch(/^ {2}last success {2}never$/m);
    expect(before.stdout).toMatch(/^ {2}conflicts {5}0 open$/m);

    const run = await cli('sync', 'run', '--config', hospital);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('hospital: ok: 25 sent, 3 request(s)\n');
    expect(run.stdout).toMatch(/^all servers drained; 0 changes still pending/m);
    expect(ids.filter((id) => fhir.repo.current('Patient', id) !== null)).toHaveLength(25);

    const after = JSON.parse((await cli('sync', 'status', '--json', '--config', hospital)).stdout) as StatusJson;
    expect(after.servers).toHaveLength(1);
    expect(after.servers[0]).toMatchObject({ name: 'hospital', baseUrl: fhir.baseUrl, routing: ['Patient'], pending: 0, inDoubt: 0, lastError: null, openConflicts: 0, openDeadLetters: 0 });
    expect(Date.parse(after.servers[0]!.lastSuccessAt ?? '')).toBeGreaterThan(Date.now() - 60_000);

    // Both commands left audit entries, and the chain is intact.
    const actions = await withStore((store) => [...new AuditLedger(store.db, () => new Date()).iterate()].map((e) => `${e.action}:${e.outcome}`));
    expect(actions.filter((a) => a.startsWith('sync.'))).toEqual(['sync.status:success', 'sync.run:success', 'sync.status:success']);
    expect((await cli('audit', 'verify')).status).toBe(0);
  });

  it('a server that is down: exit 1 with its error, the other server still drains; status shows the error and the retry time', async () => {
    const closedPort = await freePort();
    const both = configFile('both', [
      { name: 'hospital', baseUrl: fhir.baseUrl, resourceTypes: ['Patient'], maxBundleEntries: 10 },
      { name: 'registry', baseUrl: `http://127.0.0.1:${closedPort}/fhir/R4`, timeoutMs: 5_000 },
    ]);
    await queuePatients(['cli-sync-late-1', 'cli-sync-late-2']);
    const started = Date.now();
    const run = await cli('sync', 'run', '--config', both);
    expect(run.status, run.stdout + run.stderr).toBe(1);
    expect(run.stdout).toContain('hospital: ok: 2 sent, 1 request(s)\n');
    expect(run.stdout).toContain(`registry: FAILED: 0 sent, 1 request(s)\n  error: registry: POST batch Bundle of 27: cannot reach http://127.0.0.1:${closedPort}/fhir/R4 (ECONNREFUSED)\n  next attempt `);
    expect(fhir.repo.current('Patient', 'cli-sync-late-2')).not.toBeNull();

    const status = JSON.parse((await cli('sync', 'status', '--json', '--config', both)).stdout) as StatusJson;
    const registry = status.servers.find((s) => s.name === 'registry')!;
    // The registry is new: it has every change not yet deleted by retention (25 + 2), none in doubt.
    expect(registry).toMatchObject({ pending: 27, inDoubt: 0, lastSuccessAt: null });
    expect(registry.lastError).toContain('(ECONNREFUSED)');
    // Backoff with full jitter from 2 s: set, and after the failure (it may already have passed).
    expect(Date.parse(registry.nextAttemptAt ?? '')).toBeGreaterThanOrEqual(started);
    expect(status.servers.find((s) => s.name === 'hospital')).toMatchObject({ pending: 0 });
  });

  it('a conflict stored by the pass: exit 1, shown in status', async () => {
    // Someone edits the patient on the server; the workstation's own change then fails its If-Match.
    const remote = fhir.repo.current('Patient', 'cli-sync-1') as Patient;
    await fhir.repo.updateResource({ ...remote, gender: 'female' });
    await queuePatients(['cli-sync-1'], 'Changed');
    const run = await cli('sync', 'run', '--config', hospital);
    expect(run.status, run.stdout + run.stderr).toBe(1);
    expect(run.stdout).toContain('hospital: NEEDS A PERSON: 0 sent, 1 new conflict(s)');
    const status = JSON.parse((await cli('sync', 'status', '--json', '--config', hospital)).stdout) as StatusJson;
    expect(status.servers[0]).toMatchObject({ pending: 0, openConflicts: 1 });
    // The next pass has nothing new to fail on: exit 0 again, the conflict still open for a person.
    const again = await cli('sync', 'run', '--json', '--config', hospital);
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ ok: true, servers: [{ server: 'hospital', state: 'drained', conflicts: 0 }], status: [{ name: 'hospital', openConflicts: 1 }] });
  });

  it('SMART Backend Services: a refused client is exit 1 quoting the token endpoint, nothing sent; the registered key then syncs (exit 0)', async () => {
    const registered = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const keyFile = (name: string, key: typeof registered.privateKey) => {
      const file = path.join(configDir, name);
      writeFileSync(file, key.export({ format: 'pem', type: 'pkcs8' }));
      return file;
    };
    const oauth = await startLoopbackOAuthServer([{ clientId: 'workstation-cli', alg: 'ES384', jwks: [{ ...registered.publicKey.export({ format: 'jwk' }), kid: 'cli-1', alg: 'ES384', use: 'sig' }] }]);
    const secure = await startLoopbackFhirServer({ authorize: (authorization) => oauth.introspect(authorization) });
    try {
      const server = (privateKeyFile: string) => ({ name: 'secure', baseUrl: secure.baseUrl, resourceTypes: ['Patient'], auth: { kind: 'smart-backend', clientId: 'workstation-cli', tokenUrl: oauth.tokenUrl, privateKeyFile, kid: 'cli-1' } });
      const refused = await cli('sync', 'run', '--config', configFile('smart-wrong', [server(keyFile('stranger.pem', stranger.privateKey))]));
      expect(refused.status, refused.stdout + refused.stderr).toBe(1);
      expect(refused.stdout).toMatch(new RegExp(`^ {2}error: secure: POST batch Bundle of \\d+: no access token: the token endpoint ${oauth.tokenUrl.replace(/[.]/g, '\\.')} refused client "workstation-cli" \\(HTTP 401, invalid_client: client authentication failed\\)$`, 'm'));
      expect(secure.repo.allChains().size).toBe(0);

      const accepted = await cli('sync', 'run', '--config', configFile('smart-right', [server(keyFile('registered.pem', registered.privateKey))]));
      expect(accepted.status, accepted.stdout + accepted.stderr).toBe(0);
      expect(ids.filter((id) => secure.repo.current('Patient', id) !== null)).toHaveLength(25);
      expect(oauth.tokenRequests).toBe(2);
    } finally {
      await Promise.all([secure.close(), oauth.close()]);
    }
  });

  it('bad config, no server, unknown command: exit 2 with the reason', async () => {
    const ftp = await cli('sync', 'run', '--config', configFile('ftp', [{ name: 'hospital', baseUrl: 'ftp://fhir.example.org' }]));
    expect(ftp.status).toBe(2);
    expect(ftp.stderr).toMatch(/^neuroward: configuration error:\nsetting "fhir\.servers\.0\.baseUrl" \(in .+ftp\.json, FHIR server "hospital"\): must be an http\(s\) URL/);

    const noKey = await cli('sync', 'status', '--config', configFile('nokey', [{ name: 'hospital', baseUrl: fhir.baseUrl, auth: { kind: 'smart-backend', clientId: 'ws', privateKeyFile: '/nonexistent/key.pem' } }]));
    expect(noKey.status).toBe(2);
    expect(noKey.stderr).toContain('FHIR server "hospital": cannot read the SMART private key /nonexistent/key.pem');

    const none = await cli('sync', 'run', '--config', configFile('none', []));
    expect(none.status).toBe(2);
    expect(none.stderr).toBe('neuroward: no FHIR servers are configured (setting "fhir.servers"): nothing to sync to.\n');

    const unknown = await cli('sync', 'frobnicate');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('neuroward: unknown command: sync frobnicate');
  });
});
