/**
 * `neuroward sync run` counts a failed pull as it counts a failed push (issue 10 item 8, run-outcome.ts):
 * the built CLI on a real store, Medplum's router behind the fault proxy refusing the Practitioner
 * searches. The push drains, the pull fails → exit 1 naming the pull; the searches answered again → exit 0.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApp } from '../../src/main/app/app.js';
import type { AppConfig } from '../../src/main/app/config.js';
import { Outbox } from '../../src/main/store/outbox.js';
import { StoreService } from '../../src/main/store/store-service.js';
import { ADMIN, connect, tempDir, testConfig } from '../support/harness.js';
import { startLoopbackFhirServer, type LoopbackFhirServer } from '../support/fhir-server.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { testPatient } from '../support/sync-rig.js';
import { BUILT_CLI, runCli } from '../support/cli-process.js';

const CLI = BUILT_CLI;
const PASSPHRASE = 'cli sync pull test passphrase';
let config: AppConfig;
let fhir: LoopbackFhirServer;
let proxy: FaultProxy;
const env = () => ({ ...process.env, NEUROWARD_DATA_DIR: config.dataDir, NEUROWARD_PASSPHRASE_SOURCE: 'env', NEUROWARD_STORE_PASSPHRASE: PASSPHRASE });

const cli = (...args: string[]) => runCli(args, env());

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
  config = testConfig({}, { NEUROWARD_PASSPHRASE_SOURCE: 'env', NEUROWARD_STORE_PASSPHRASE: PASSPHRASE });
  const app = await createApp({ config, host: 'headless', log: () => undefined, announce: () => undefined });
  await connect(app).ok('setup.initialize', { admin: ADMIN, demoData: false });
  await app.close();
  fhir = await startLoopbackFhirServer();
  proxy = await startFaultProxy(fhir.baseUrl);
  const store = new StoreService(config, undefined, () => new Date());
  await store.start();
  try {
    store.transaction(() => ['clp-1', 'clp-2'].forEach((id) => new Outbox(store.db, () => new Date()).enqueue('update', testPatient(id, 'Pull'))));
  } finally {
    store.close();
  }
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await fhir?.close();
});

it('a refused pull fails the run (exit 1, the pull named) though the push drained; answered again, exit 0', async () => {
  const file = path.join(tempDir('nw-cli-sync-pull-'), 'site.json');
  writeFileSync(file, JSON.stringify({ fhir: { servers: [{ name: 'hospital', baseUrl: proxy.baseUrl, resourceTypes: ['Patient', 'Practitioner'], pull: { resourceTypes: ['Practitioner'] } }] } }));
  let refuse = true;
  proxy.setPlan((req) => (refuse && req.method === 'GET' && req.url.includes('/Practitioner?') ? { kind: 'status', status: 500 } : { kind: 'pass' }));

  const failed = await cli('sync', 'run', '--config', file);
  expect(failed.status, failed.stdout + failed.stderr).toBe(1);
  expect(failed.stdout).toMatch(/hospital: ok: 2 sent/); // the push itself went through
  expect(failed.stdout).toMatch(/pull error: .*HTTP 500/);
  expect(failed.stdout).toContain('not everything went through');
  expect(fhir.repo.current('Patient', 'clp-1')).toBeTruthy();

  refuse = false;
  const ok = await cli('sync', 'run', '--config', file);
  expect(ok.status, ok.stdout + ok.stderr).toBe(0);
  expect(ok.stdout).toContain('all servers drained');
}, 120_000);
