/**
 * Child process of test/fhir/sync-crash.test.ts: opens the store the test prepared and drains its
 * outbox to the given server, as the app's engine does, until everything is finished; then prints
 * DRAINED and exits 0. The test kills it with SIGKILL at random instants (and right after the server
 * committed a write), restarts it, and checks the server at the end. Bundled with esbuild by the test.
 */
import { openEncryptedDatabase } from '../../src/main/store/database.js';
import { applyMigrations } from '../../src/main/store/migrations.js';
import { FhirSyncEngine } from '../../src/main/fhir/sync/sync-engine.js';
import { syncServer } from '../../src/main/fhir/sync/settings.js';

const file = process.env.SYNC_CRASH_DB ?? '';
const key = Buffer.from(process.env.SYNC_CRASH_KEY ?? '', 'hex');
const baseUrl = process.env.SYNC_CRASH_URL ?? '';
const maxBundleEntries = Number(process.env.SYNC_CRASH_BUNDLE ?? '7');

const db = openEncryptedDatabase(file, key, { create: false });
applyMigrations(db, () => new Date().toISOString());
const engine = new FhirSyncEngine({
  db,
  servers: [syncServer({ name: 'crash', baseUrl, maxBundleEntries, timeoutMs: 5_000 })],
  policy: { backoffBaseMs: 10, backoffMaxMs: 50 },
});
process.stdout.write('STARTED\n');
for (;;) {
  const report = await engine.runOnce({ force: true });
  if (report.servers.every((s) => s.state === 'drained')) break;
  await new Promise((r) => setTimeout(r, 5));
}
await engine.close();
db.close();
process.stdout.write('DRAINED\n');
process.exit(0);
