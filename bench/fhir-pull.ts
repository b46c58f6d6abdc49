/**
 * FHIR pull benchmark (issue 10 item 4): a real FHIR server on loopback (@medplum/fhir-router +
 * MemoryRepository behind test/support/fhir-server.ts, in a child process of its own, so its CPU is not
 * the workstation's) holds `--count` Patients (written by batch PUTs before timing); per page size, a
 * fresh encrypted store pulls them all (FhirSyncEngine.pull(): search by _lastUpdated, keyset pages, each
 * merged into the patients table), then pulls again (nothing changed: every re-read one recognised by
 * version). Prints resources/s, searches, CPU of each process and the memory peak. Checks that the store
 * then holds exactly `--count` patients and that nothing was queued in the outbox. Never fails on a slow
 * machine; exits 1 only when a check fails.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openEncryptedDatabase } from '../src/main/store/database.js';
import { applyMigrations } from '../src/main/store/migrations.js';
import { PatientsRepository } from '../src/main/patients/patients-repo.js';
import { FhirSyncEngine } from '../src/main/fhir/sync/sync-engine.js';
import { syncServer } from '../src/main/fhir/sync/settings.js';
import { serveFhirServerChild, startFhirServerChild } from './fhir-server-child.js';

const USAGE = 'node bench/fhir-pull.mjs [--count=10000] [--page=100,1000]';

function parseOptions(argv: string[]): { count: number; pages: number[] } {
  const options = { count: 10_000, pages: [100, 1000] };
  for (const arg of argv) {
    const count = /^--count=(\d+)$/.exec(arg);
    const pages = /^--page=(\d+(?:,\d+)*)$/.exec(arg);
    if (count) options.count = Number(count[1]);
    else if (pages) options.pages = pages[1]!.split(',').map(Number);
    else {
      console.error(`fhir-pull: bad argument ${arg}\nusage: ${USAGE}`);
      process.exit(2);
    }
  }
  return options;
}

async function seed(baseUrl: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += 100) {
    const entry = [];
    for (let i = start; i < Math.min(count, start + 100); i++) {
      const resource = {
        resourceType: 'Patient',
        id: `bench-pull-${i}`,
        meta: { tag: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HTEST' }] },
        identifier: [{ system: 'urn:neuroward:mrn', value: `PULL-${i}` }],
        name: [{ use: 'official', family: `Family${i}`, given: ['Bench'] }],
        gender: i % 2 ? 'female' : 'male',
        birthDate: '1970-01-01',
      };
      entry.push({ resource, request: { method: 'PUT', url: `Patient/${resource.id}` } });
    }
    const response = await fetch(baseUrl, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Bundle', type: 'batch', entry }) });
    if (response.status !== 200) throw new Error(`seeding answered HTTP ${response.status}`);
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const server = await startFhirServerChild(import.meta.url);
  let failed = false;
  try {
    await seed(server.baseUrl, options.count);
    console.log(`fhir-pull: ${options.count} Patients on the loopback server; pulling with page sizes ${options.pages.join(', ')}`);
    for (const pageSize of options.pages) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'nw-bench-pull-'));
      const db = openEncryptedDatabase(path.join(dir, 'pull.db'), randomBytes(32), { create: true });
      applyMigrations(db, () => new Date().toISOString());
      const now = () => new Date();
      const engine = new FhirSyncEngine({ db, servers: [syncServer({ name: 'bench', baseUrl: server.baseUrl, timeoutMs: 600_000, pull: { resourceTypes: ['Patient'], pageSize, overlapMs: 5_000 } })], now, pulledPatients: new PatientsRepository(db, now) });
      const serverCpu0 = (await server.stats()).cpuSeconds;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const [first] = await engine.pull();
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const serverCpu = (await server.stats()).cpuSeconds - serverCpu0;
      const t1 = performance.now();
      const [again] = await engine.pull();
      const againSeconds = (performance.now() - t1) / 1000;
      const patients = (db.prepare('SELECT count(*) AS n FROM patients').get() as { n: number }).n;
      const queued = (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
      const type = first!.types[0]!;
      console.log(
        `  page ${String(pageSize).padStart(4)}: ${type.applied} applied in ${seconds.toFixed(1)} s = ${Math.round(type.applied / seconds)} resources/s, ${type.requests} searches; ` +
          `CPU workstation ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, server ${serverCpu.toFixed(1)} s; ` +
          `again: ${again!.types[0]!.applied} applied, ${again!.types[0]!.known} recognised in ${againSeconds.toFixed(1)} s; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
      );
      if (patients !== options.count || queued !== 0 || first!.state !== 'done' || again!.types[0]!.applied !== 0) {
        console.error(`  CHECK FAILED: ${patients} patients (expected ${options.count}), ${queued} outbox rows (expected 0), state ${first!.state}, second pull applied ${again!.types[0]!.applied}`);
        failed = true;
      }
      await engine.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`  server peak RSS ${(await server.stats()).maxRssMb.toFixed(0)} MB`);
  } finally {
    await server.stop();
  }
  if (failed) process.exit(1);
}

if (process.argv.includes('--server')) void serveFhirServerChild();
else await main();
