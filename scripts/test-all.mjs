#!/usr/bin/env node
// `npm test`: the whole suite, in the order a failure is cheapest to find. Build → typecheck → lint →
// unit + integration (vitest) → end-to-end in Debian's Chromium (Playwright) → Electron end-to-end
// (runs where the Electron binary exists, otherwise skipped with the reason). Ends with one line:
// "tests: N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const bin = (name) => path.join(root, 'node_modules/.bin', name);
const results = path.join(root, 'test-results');
mkdirSync(results, { recursive: true });
const totals = { passed: 0, failed: 0, skipped: 0 };
const failedSteps = [];

function step(name, command, args, env = {}) {
  const started = Date.now();
  console.log(`\n=== ${name} ===`);
  const run = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (run.status !== 0) failedSteps.push(name);
  console.log(`=== ${name}: ${run.status === 0 ? 'ok' : `FAILED (exit ${run.status ?? run.signal})`} in ${seconds} s ===`);
  return run.status === 0;
}

function countPlaywright(file, stepOk) {
  if (!existsSync(file)) {
    if (!stepOk) totals.failed += 1;
    return;
  }
  const { stats } = JSON.parse(readFileSync(file, 'utf8'));
  totals.passed += stats.expected + stats.flaky;
  totals.failed += stats.unexpected || (stepOk ? 0 : 1);
  totals.skipped += stats.skipped;
}

if (!step('build', process.execPath, ['scripts/build.mjs'])) {
  console.log('\ntests: 0 passed, 1 failed, 0 skipped');
  process.exit(1);
}
// A failed check counts as one failure in the closing line, as a failed test does.
if (!step('typecheck', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit'])) totals.failed += 1;
if (!step('lint', bin('eslint'), ['--max-warnings=0', '.'])) totals.failed += 1;

const vitestJson = path.join(results, 'vitest.json');
rmSync(vitestJson, { force: true });
const vitestOk = step('unit and integration tests (vitest)', bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${vitestJson}`]);
if (existsSync(vitestJson)) {
  const report = JSON.parse(readFileSync(vitestJson, 'utf8'));
  totals.passed += report.numPassedTests;
  // A run that failed without a failed test (a file that does not load, an unhandled error) still counts.
  totals.failed += report.numFailedTests || (vitestOk ? 0 : 1);
  totals.skipped += report.numPendingTests + report.numTodoTests;
} else totals.failed += 1;

const e2eJson = path.join(results, 'e2e.json');
rmSync(e2eJson, { force: true });
const e2eOk = step('end-to-end tests in Chromium (Playwright, headless host)', bin('playwright'), ['test', '--reporter=list,json'], { PLAYWRIGHT_JSON_OUTPUT_NAME: e2eJson });
countPlaywright(e2eJson, e2eOk);

const electronJson = path.join(results, 'electron.json');
rmSync(electronJson, { force: true });
const electronOk = step('Electron end-to-end tests (Playwright _electron)', bin('playwright'), ['test', '-c', 'test/electron/playwright.config.ts', '--reporter=list,json'], { PLAYWRIGHT_JSON_OUTPUT_NAME: electronJson });
countPlaywright(electronJson, electronOk);

if (failedSteps.length) console.log(`\nfailed steps: ${failedSteps.join(', ')}`);
console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failedSteps.length || totals.failed ? 1 : 0);
