import { defineConfig } from '@playwright/test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// End-to-end tests drive the headless host in Debian's Chromium (no browser download here).
// The host runs on a fresh data dir, so every run starts at first-run setup.
const port = Number(process.env.NEUROWARD_E2E_PORT ?? 4791);
const dataDir = process.env.NEUROWARD_E2E_DATA_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'nw-e2e-'));
process.env.NEUROWARD_E2E_DATA_DIR = dataDir;
// Simulated bedside monitors in the ward tests publish to the host's embedded broker on this port.
const mqttPort = Number(process.env.NEUROWARD_E2E_MQTT_PORT ?? 4793);
process.env.NEUROWARD_E2E_MQTT_URL = `mqtt://127.0.0.1:${mqttPort}`;
// The host is configured with one FHIR server on this port; sync.spec.ts starts it (Medplum's router on
// loopback) only while it runs, so other specs pay nothing and see a configured but unreachable server.
const fhirPort = Number(process.env.NEUROWARD_E2E_FHIR_PORT ?? 4795);
process.env.NEUROWARD_E2E_FHIR_PORT = String(fhirPort);
// The site's config file in the data dir (demo data as with no file). No pull from that server: sync.spec.ts
// makes a conflict by editing on the server and here, and a pull in between would (rightly) adopt the
// server's edit first and leave no conflict; pull has its own tests (test/fhir/sync-pull*.test.ts).
writeFileSync(
  path.join(dataDir, 'neuroward.config.json'),
  JSON.stringify({ demo: true, fhir: { servers: [{ name: 'hospital', baseUrl: `http://127.0.0.1:${fhirPort}/fhir/R4`, pull: false }] } }),
);

export default defineConfig({
  testDir: 'test/e2e',
  // After the webServer is up: turns the host's launch file into the cookie every page carries.
  globalSetup: './test/e2e/global-setup.ts',
  outputDir: 'test-results/e2e-artifacts',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    storageState: 'test-results/e2e-launch-state.json',
    viewport: { width: 1280, height: 800 },
    colorScheme: 'dark',
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    },
  },
  webServer: {
    command: `node dist/main/headless.js --port ${port}`,
    // Answers 401 without the launch key: Playwright counts any status below 404 as up.
    url: `http://127.0.0.1:${port}/`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    // The radiologist imports the real scanner series in ../shared/data.
    env: { NEUROWARD_DATA_DIR: dataDir, NEUROWARD_DEMO: 'true', NEUROWARD_IDLE_LOCK_MINUTES: '10', NEUROWARD_IMPORT_ROOTS: path.resolve('../shared/data'), NEUROWARD_MQTT_PORT: String(mqttPort) },
  },
});
