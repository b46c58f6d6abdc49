/**
 * The nurse's ward board against the headless host and its embedded MQTT broker, with simulated
 * bedside monitors (`neuroward simulate-ward` as a child process):
 *
 *  1. a nurse opens the ward, four simulated patients deteriorate, a high-priority alarm appears and
 *     sounds (data-playing="high"); the nurse opens a bed's charts, acknowledges the alarm with a
 *     reason, and the bed view's alarm log lists the raise and the acknowledgement (who, why); the nurse
 *     pauses the others (a pause over 120 s is refused on the form); once every high alarm
 *     is acknowledged or paused the high tone stops; the administrator finds `alarm.acknowledge` in
 *     the audit log;
 *  2. 500 beds at 1 Hz for ~20 s: requestAnimationFrame deltas recorded by the page (?frametimes=1),
 *     p50/p95 printed — a figure for the report, not a pass/fail;
 *  3. a physician puts a patient with SpO2 88 % on air on NEWS2 SpO2 scale 2 from the bed view, with a
 *     reason and a confirmation: the score drops by 3 and the tile shows a "Scale 2" badge.
 *  4. a nurse admits a synthetic patient (Greta Fixture) to a bed from the bed view (search, note,
 *     confirm): the tile shows the name and MRN, the patient's record the bed, the stay and the bed's
 *     readings since the admission; the nurse discharges her again.
 *
 * Screenshots under test-results/screens/ward-*.png. Self-sufficient: sets the workstation up if
 * needed and creates its own nurse account (support.ts). The broker URL comes from
 * NEUROWARD_E2E_MQTT_URL (set by playwright.config.ts); failing that, from the board's link status.
 * The embedded broker refuses anonymous monitors: each test first has the administrator create its
 * beds' credentials in Admin → Monitors, copies the credentials file shown once, and hands it to the
 * simulator (`--credentials FILE`), as a site would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import mqtt from 'mqtt';
import { ADMIN, CHROMIUM_ARGS, CHROMIUM_PATH, cspViolations, recordCspViolations, shot, signInAs, toSignIn, trySignIn, type Account } from './support.js';
import type { MonitorCredentialsFile } from '../../src/shared/ipc.js';

const NURSE: Account = {
  username: 'nurse.ward.e2e',
  displayName: 'Nell Ward',
  roleLabel: 'Ward nurse',
  temporaryPassword: 'temporary ward pass 1',
  password: 'ward e2e nurse password',
};

const PHYSICIAN: Account = {
  username: 'physician.ward.e2e',
  displayName: 'Dr Pia Ward',
  roleLabel: 'Physician',
  temporaryPassword: 'temporary physician pass 1',
  password: 'ward e2e physician password',
};

const CLI = path.resolve('dist/cli/neuroward.js');
/** The deteriorating scenario reaches its worst after this many seconds. */
const DRIFT_S = 30;

// Audio may start without a click, as on a ward workstation configured for it; the banner path is
// exercised too when the browser still holds audio back.
test.use({ launchOptions: { executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required'] } });

const simulators: ChildProcess[] = [];

function simulate(broker: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'simulate-ward', '--broker', broker, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  child.on('exit', (code, signal) => {
    if (code && !signal) console.log(`simulate-ward exited with ${code}: ${stderr}`);
  });
  simulators.push(child);
  return child;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

test.afterEach(async () => {
  await Promise.all(simulators.splice(0).map(stop));
});

/**
 * The administrator creates credentials for `beds` of `ward` in Admin → Monitors; returns the
 * credentials file shown once (written to a temp file for the simulator) and leaves the page signed out.
 */
async function provisionMonitors(page: Page, ward: string, beds: string, screenshot?: string): Promise<{ file: string; credentials: MonitorCredentialsFile }> {
  await toSignIn(page);
  expect(await trySignIn(page, ADMIN.username, ADMIN.password)).toBe(true);
  await page.getByTestId('nav').getByTestId('nav-admin').click();
  await page.getByRole('tab', { name: 'Monitors' }).click();
  const form = page.getByTestId('create-monitors-form');
  await form.getByLabel('Ward').fill(ward);
  await form.getByLabel('Beds').fill(beds);
  await form.getByLabel('Label').fill('e2e simulated monitors');
  await form.getByRole('button', { name: 'Create credentials' }).click();
  const created = page.getByTestId('monitor-credentials-created');
  await expect(created).toBeVisible({ timeout: 30_000 });
  await expect(page.locator(`[data-testid="monitor-row"][data-bed="${ward}/${beds.split(/[-,\s]/)[0]}"]`).first()).toBeVisible();
  if (screenshot) await shot(page, screenshot);
  const credentials = JSON.parse(await created.getByTestId('monitor-credentials-json').inputValue()) as MonitorCredentialsFile;
  await created.getByRole('button', { name: 'I have copied them' }).click();
  await expect(created).toBeHidden();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'nw-e2e-monitors-')), 'monitors.json');
  writeFileSync(file, JSON.stringify(credentials), { mode: 0o600 });
  return { file, credentials };
}

async function brokerUrl(page: Page): Promise<string> {
  const fromEnv = process.env.NEUROWARD_E2E_MQTT_URL;
  if (fromEnv) return fromEnv;
  const status = page.getByTestId('link-status');
  await expect(status).not.toHaveAttribute('data-broker', '');
  const broker = await status.getAttribute('data-broker');
  if (!broker) throw new Error('no broker URL: set NEUROWARD_E2E_MQTT_URL');
  return broker;
}

/** Records requestAnimationFrame deltas for `ms` (while `step` runs repeatedly, if given); returns a summary. */
async function measureFrames(page: Page, ms: number, step?: () => Promise<void>): Promise<string> {
  await page.evaluate(() => Reflect.set(window, '__wardFrameTimes', []));
  const t0 = Date.now();
  if (step) while (Date.now() - t0 < ms) await step();
  else await page.waitForTimeout(ms);
  const frames = await page.evaluate(() => (Reflect.get(window, '__wardFrameTimes') as number[] | undefined)?.slice() ?? []);
  expect(frames.length).toBeGreaterThan(0);
  const sorted = [...frames].sort((a, b) => a - b);
  const q = (p: number) => (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN).toFixed(1);
  const over = (limit: number) => frames.filter((f) => f > limit).length;
  return (
    `${((Date.now() - t0) / 1000).toFixed(1)} s, ${frames.length} frames, p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, p99 ${q(0.99)} ms, ` +
    `max ${q(1)} ms, ${over(34)} frames over 34 ms`
  );
}

async function openWard(page: Page): Promise<void> {
  await page.getByTestId('nav').getByTestId('nav-ward').click();
  await expect(page.getByTestId('ward-board')).toBeVisible();
  await expect(page.getByTestId('ward-board')).toHaveAttribute('data-status', 'ready', { timeout: 15_000 });
}

/** Starts audio if the browser still holds it back (the banner), as a nurse would. */
async function enableSound(page: Page): Promise<void> {
  const banner = page.getByRole('button', { name: 'Click to enable alarm sound' });
  if (await banner.isVisible()) await banner.click();
  await expect(page.getByTestId('alarm-sound')).toHaveAttribute('data-audio', 'running');
}

const unsilencedHigh = (page: Page) =>
  page.locator('[data-testid="alarm-row"][data-priority="high"][data-acknowledged="false"]:not(.alarm-row--paused)');

test('a deteriorating patient raises a high alarm that sounds; the nurse acknowledges it with a reason, and it is audited', async ({ page }) => {
  test.setTimeout(240_000);
  await recordCspViolations(page);
  const { file: credentials } = await provisionMonitors(page, 'E2E', '1-4', 'ward-00-monitor-credentials');
  await signInAs(page, NURSE);
  await openWard(page);
  await shot(page, 'ward-01-opened');

  const broker = await brokerUrl(page);
  const started = Date.now();
  simulate(broker, ['--beds', '4', '--interval', '1', '--scenario', 'deteriorating', '--drift-seconds', String(DRIFT_S), '--ward', 'E2E', '--credentials', credentials]);

  const tiles = page.locator('[data-testid="bed-tile"][data-bed^="E2E/"]');
  await expect(tiles).toHaveCount(4, { timeout: 30_000 });
  await enableSound(page);
  await shot(page, 'ward-02-beds');

  // The simulated patients deteriorate: a high-priority alarm, a tile in the red NEWS2 band, the high tone.
  const highRow = page.locator('[data-testid="alarm-row"][data-priority="high"][data-acknowledged="false"][data-bed^="E2E/"]').first();
  await expect(highRow).toBeVisible({ timeout: 120_000 });
  await expect(page.locator('[data-testid="bed-tile"][data-bed^="E2E/"][data-news2-risk="high"]').first()).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId('alarm-sound')).toHaveAttribute('data-playing', 'high');
  // Leaving the board does not silence it: the tone and a pill follow the nurse to other screens.
  await page.getByTestId('nav').getByTestId('nav-patients').click();
  await expect(page.getByTestId('alarm-watch')).toHaveAttribute('data-playing', 'high');
  await shot(page, 'ward-03b-alarm-on-other-screen');
  await page.getByTestId('alarm-watch').click();
  await expect(page.getByTestId('alarm-sound')).toHaveAttribute('data-playing', 'high');
  // High first: the list starts with a high-priority row.
  await expect(page.getByTestId('alarm-list').getByTestId('alarm-row').first()).toHaveAttribute('data-priority', 'high');
  await shot(page, 'ward-03-high-alarm');

  // Screens that say what is true: both counters from one definition, the link apart from the data,
  // a latched priority never shown bare beside a lower score, and no status label cut off at 1280×800.
  // Both read in one turn of the page (new alarms arrive as the patients deteriorate: two reads apart
  // could see two different alarm lists).
  const counters = await page.evaluate(() => ['alarm-panel-count', 'ward-alarm-count'].map((id) => (document.querySelector(`[data-testid="${id}"]`) as HTMLElement | null)?.innerText ?? ''));
  const panelCount = counters[0]!.match(/^(\d+) unacknowledged · (\d+) active$/);
  const toolbarCount = counters[1]!.match(/^(\d+) unacknowledged \((\d+) high\)/);
  expect(panelCount && toolbarCount, 'both counters shown').toBeTruthy();
  expect(toolbarCount![1]).toBe(panelCount![1]);
  await expect(page.getByTestId('link-status')).toHaveText('Broker connected');
  await expect(page.getByTestId('data-status')).toContainText(/beds reporting/);
  for (const label of await page.getByTestId('alarm-priority').allInnerTexts()) expect(label).toMatch(/^(high|medium|low|latched (high|medium|low) · (now (medium|low)|condition over))$/i);
  for (const tile of await page.locator('[data-testid="bed-tile"][data-bed^="E2E/"]').all()) {
    const box = await tile.boundingBox();
    const status = await tile.locator('.bed-tile__status > *').first().boundingBox();
    expect(box && status, 'tile and its status label are laid out').toBeTruthy();
    expect(status!.y + status!.height, `status label of ${await tile.getAttribute('data-bed')} inside its tile`).toBeLessThanOrEqual(box!.y + box!.height - 4);
  }

  // The bed view: an hour of history as charts.
  const bedKey = await highRow.getAttribute('data-bed');
  expect(bedKey).toBeTruthy();
  await page.locator(`[data-testid="bed-tile"][data-bed="${bedKey}"]`).click();
  await expect(page.getByTestId('bed-view')).toBeVisible();
  await expect(page.getByTestId('bed-view')).toHaveAttribute('data-bed', bedKey ?? '');
  await expect.poll(async () => Number(await page.getByTestId('bed-view').locator('.bed-charts').getAttribute('data-readings')), { timeout: 15_000 }).toBeGreaterThan(3);
  await shot(page, 'ward-04-bed-view');
  await page.getByRole('link', { name: '← Board' }).click();
  await expect(page.getByTestId('bed-board')).toBeVisible();

  // Acknowledge with a reason.
  const alarmId = await highRow.getAttribute('data-alarm-id');
  expect(alarmId).toBeTruthy();
  const row = page.locator(`[data-testid="alarm-row"][data-alarm-id="${alarmId}"]`);
  await row.getByRole('button', { name: 'Acknowledge' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  await dialog.getByLabel('Reason').fill('Patient assessed at bedside, doctor called');
  await shot(page, 'ward-05-acknowledge-dialog');
  await dialog.getByRole('button', { name: 'Acknowledge' }).click();
  await expect(dialog).toBeHidden();
  // Acknowledged (or, when it had latched, cleared by the acknowledgement).
  await expect
    .poll(async () => ((await row.count()) === 0 ? 'cleared' : await row.getAttribute('data-acknowledged')), { timeout: 10_000 })
    .toMatch(/^(true|cleared)$/);

  // The bed view's alarm log (last 24 h) lists the alarm's raise and its acknowledgement, with who and why.
  await page.locator(`[data-testid="bed-tile"][data-bed="${bedKey}"]`).click();
  const alarmLog = page.getByTestId('alarm-log');
  const logRow = (event: string) => alarmLog.locator(`[data-testid="alarm-log-row"][data-alarm-id="${alarmId}"][data-event="${event}"]`);
  await expect(logRow('raised')).toHaveCount(1, { timeout: 10_000 });
  await expect(logRow('acknowledged')).toHaveCount(1, { timeout: 10_000 });
  await expect(logRow('acknowledged')).toContainText(NURSE.displayName);
  await expect(logRow('acknowledged')).toContainText('Patient assessed at bedside, doctor called');
  await alarmLog.scrollIntoViewIfNeeded();
  await shot(page, 'ward-12-alarm-log');
  await page.getByRole('link', { name: '← Board' }).click();
  await expect(page.getByTestId('bed-board')).toBeVisible();

  // Pausing asks for the seconds: more than 120 is refused on the form.
  await expect.poll(() => unsilencedHigh(page).count(), { timeout: 30_000 }).toBeGreaterThan(0);
  await unsilencedHigh(page).first().getByRole('button', { name: 'Pause' }).click();
  await dialog.getByLabel('Reason').fill('Rapid response team on the way');
  await dialog.getByLabel('Seconds').fill('300');
  await dialog.getByRole('button', { name: 'Pause' }).click();
  await expect(dialog.getByText(/whole number from 10 to 120/i)).toBeVisible();
  await shot(page, 'ward-06-pause-dialog');
  await dialog.getByLabel('Seconds').fill('120');
  await dialog.getByRole('button', { name: 'Pause' }).click();
  await expect(dialog).toBeHidden();

  // Once the scenario has reached its worst (no new alarms), silence every high alarm: the high tone stops.
  const settle = started + (DRIFT_S + 8) * 1000 - Date.now();
  if (settle > 0) await page.waitForTimeout(settle);
  for (let i = 0; i < 20 && (await unsilencedHigh(page).count()) > 0; i++) {
    await unsilencedHigh(page).first().getByRole('button', { name: 'Pause' }).click();
    await dialog.getByLabel('Reason').fill('Rapid response team on the way');
    await dialog.getByLabel('Seconds').fill('120');
    await dialog.getByRole('button', { name: 'Pause' }).click();
    await expect(dialog).toBeHidden();
  }
  await expect(page.getByTestId('alarm-sound')).not.toHaveAttribute('data-playing', 'high', { timeout: 10_000 });
  await shot(page, 'ward-07-silenced');
  expect(await cspViolations(page)).toEqual([]);

  // The administrator finds the acknowledgement in the audit log.
  await toSignIn(page);
  expect(await trySignIn(page, ADMIN.username, ADMIN.password)).toBe(true);
  await page.getByTestId('nav').getByTestId('nav-admin').click();
  await page.getByRole('tab', { name: /audit/i }).click();
  await page.getByLabel('Action').fill('alarm.acknowledge');
  const audit = page.getByTestId('audit-table');
  await expect(audit.getByTestId('audit-row').first()).toContainText('alarm.acknowledge', { timeout: 15_000 });
  await expect(audit).toContainText(NURSE.username);
  await shot(page, 'ward-08-audit');
});

test('500 beds at 1 Hz: frame times while the board updates', async ({ page }) => {
  test.setTimeout(180_000);
  const { file: credentials } = await provisionMonitors(page, 'LOAD', '1-500');
  await signInAs(page, NURSE);
  // Frame times are recorded only with ?frametimes=1; the reload locks the session, so unlock.
  await page.goto('/?frametimes=1#/ward');
  const unlock = page.getByRole('button', { name: 'Unlock' });
  await expect(unlock.or(page.getByTestId('ward-board')).first()).toBeVisible({ timeout: 30_000 });
  if (await unlock.isVisible()) {
    await page.getByLabel('Password', { exact: true }).fill(NURSE.password);
    await unlock.click();
  }
  await expect(page.getByTestId('ward-board')).toHaveAttribute('data-status', 'ready', { timeout: 15_000 });

  const broker = await brokerUrl(page);
  simulate(broker, ['--beds', '500', '--interval', '1', '--scenario', 'stable', '--ward', 'LOAD', '--credentials', credentials]);
  await expect.poll(async () => Number(await page.getByTestId('bed-board').getAttribute('data-beds')), { timeout: 60_000 }).toBeGreaterThanOrEqual(500);
  await page.waitForTimeout(2_000);

  const tilesInDom = () => page.getByTestId('bed-tile').count();
  const beds = await page.getByTestId('bed-board').getAttribute('data-beds');

  const updates = async () => Number(await page.getByTestId('ward-board').getAttribute('data-updates'));

  // Watching: ~20 s of updates.
  const before = await updates();
  const watching = await measureFrames(page, 20_000);
  const received = (await updates()) - before;
  console.log(`ward frame times, ${beds} beds at 1 Hz, watching: ${watching}; ${received} board updates received; ${await tilesInDom()} tiles in the DOM`);
  expect(received).toBeGreaterThanOrEqual(10);
  await shot(page, 'ward-09-500-beds');

  // Scrolling through the board while it updates (~10 s).
  const box = await page.getByTestId('bed-board').boundingBox();
  if (box) await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  let direction = 1;
  const scrolling = await measureFrames(page, 10_000, async () => {
    const atEnd = await page.getByTestId('bed-board').evaluate((el, d) => (d > 0 ? el.scrollTop + el.clientHeight >= el.scrollHeight - 2 : el.scrollTop <= 0), direction);
    if (atEnd) direction = -direction;
    await page.mouse.wheel(0, 240 * direction);
    await page.waitForTimeout(50);
  });
  console.log(`ward frame times, ${beds} beds at 1 Hz, scrolling: ${scrolling}; ${await tilesInDom()} tiles in the DOM`);
  await shot(page, 'ward-10-500-beds-scrolled');
});

test('a physician sets NEWS2 SpO2 scale 2 for a patient in the bed view; the tile shows the badge', async ({ page }) => {
  test.setTimeout(120_000);
  await recordCspViolations(page);
  const { credentials } = await provisionMonitors(page, 'AMU', '1');
  await signInAs(page, PHYSICIAN);
  await openWard(page);
  const broker = await brokerUrl(page);
  // A patient with SpO2 88 % on air, otherwise normal: NEWS2 3 on scale 1, 0 on scale 2. Ward AMU sorts
  // before the other specs' wards, so its tile is in view (the board renders only the visible tiles).
  // Unique per run: a reused data dir keeps the scale of earlier patients and refuses repeated (device, seq).
  const run = Date.now().toString(36);
  const patient = `mrn:E2E-${run}`;
  const monitor = credentials.monitors[0]!;
  const client = await mqtt.connectAsync(broker, { clientId: `e2e-scale-${run}`, clean: true, username: monitor.username, password: monitor.password });
  let seq = 1;
  const publish = () =>
    client.publishAsync(
      'ward/AMU/bed/1/vitals',
      JSON.stringify({ v: 1, deviceId: `e2e-scale-${run}`, seq: seq++, ts: new Date().toISOString(), hr: 72, spo2: 88, rr: 14, tempC: 36.8, sbp: 128, dbp: 76, acvpu: 'A', o2: false, patient }),
      { qos: 1 },
    );
  const timer = setInterval(() => void publish().catch(() => undefined), 1000);
  try {
    const tile = page.locator('[data-testid="bed-tile"][data-bed="AMU/1"]');
    await expect(tile).toHaveAttribute('data-news2', '3', { timeout: 30_000 });
    await expect(tile).toHaveAttribute('data-spo2-scale', '1');
    await expect(tile.getByTestId('spo2-scale-badge')).toHaveCount(0);
    await tile.click();

    const panel = page.getByTestId('spo2-scale');
    await expect(panel).toHaveAttribute('data-scale', '1');
    await panel.getByRole('button', { name: 'Change SpO₂ scale…' }).click();
    const dialog = page.getByTestId('spo2-scale-dialog');
    await expect(dialog).toBeVisible();
    await expect(dialog.getByLabel(/^Scale 2/)).toBeChecked();
    // The reason is required.
    await dialog.getByRole('button', { name: 'Review' }).click();
    await expect(dialog.getByText(/say why in a few words/i)).toBeVisible();
    await dialog.getByLabel('Reason').fill('Hypercapnic respiratory failure (COPD), target 88-92%');
    await dialog.getByRole('button', { name: 'Review' }).click();
    await expect(dialog.getByTestId('spo2-scale-confirm')).toContainText('scale 2');
    await shot(page, 'ward-11-spo2-scale-confirm');
    await dialog.getByRole('button', { name: 'Confirm scale 2' }).click();
    await expect(dialog).toBeHidden();
    await expect(panel).toHaveAttribute('data-scale', '2');
    await expect(panel).toContainText(PHYSICIAN.displayName);
    await expect(panel).toContainText('target 88-92%');
    await shot(page, 'ward-12-spo2-scale-2');

    await page.getByRole('link', { name: '← Board' }).click();
    await expect(tile).toHaveAttribute('data-spo2-scale', '2');
    await expect(tile).toHaveAttribute('data-news2', '0', { timeout: 10_000 });
    const badge = tile.getByTestId('spo2-scale-badge');
    await expect(badge).toHaveText('Scale 2');
    await expect(badge).toHaveAttribute('title', /set by Dr Pia Ward .*Hypercapnic respiratory failure/);
    await shot(page, 'ward-13-spo2-scale-badge');
    expect(await cspViolations(page)).toEqual([]);
  } finally {
    clearInterval(timer);
    await client.endAsync();
  }
});

test('a nurse admits a synthetic patient to a bed from the bed view; the tile shows the name, the record the bed and vitals', async ({ page }) => {
  test.setTimeout(120_000);
  await recordCspViolations(page);
  const { credentials } = await provisionMonitors(page, 'ADM', '1');
  await signInAs(page, NURSE);
  await openWard(page);
  const broker = await brokerUrl(page);
  // A monitor at bed ADM/1 that names nobody (the readings belong to whoever is admitted).
  const run = Date.now().toString(36);
  const monitor = credentials.monitors[0]!;
  const client = await mqtt.connectAsync(broker, { clientId: `e2e-adt-${run}`, clean: true, username: monitor.username, password: monitor.password });
  let seq = 1;
  const publish = () =>
    client.publishAsync(
      'ward/ADM/bed/1/vitals',
      JSON.stringify({ v: 1, deviceId: `e2e-adt-${run}`, seq: seq++, ts: new Date().toISOString(), hr: 78, spo2: 97, rr: 15, tempC: 37.0, sbp: 126, dbp: 78, acvpu: 'A', o2: false }),
      { qos: 1 },
    );
  const timer = setInterval(() => void publish().catch(() => undefined), 1000);
  try {
    // The demo ward's synthetic patients are in beds 4A/1…6 from setup.
    await expect(page.locator('[data-testid="bed-tile"][data-bed="4A/1"] [data-testid="bed-tile-patient"]')).toContainText('Ada Synthetica');
    const tile = page.locator('[data-testid="bed-tile"][data-bed="ADM/1"]');
    await expect(tile).toBeVisible({ timeout: 30_000 });
    await expect(tile.getByTestId('bed-tile-patient')).toHaveText('No patient admitted');
    await tile.click();

    const panel = page.getByTestId('admission-panel');
    await expect(panel).toHaveAttribute('data-admitted', 'false');
    await panel.getByRole('button', { name: 'Admit a patient…' }).click();
    const dialog = page.getByTestId('admit-dialog');
    await expect(dialog).toBeVisible();
    await dialog.getByLabel('Find the patient').fill('Fixture');
    const result = dialog.getByTestId('admit-result').filter({ hasText: 'Greta Fixture' });
    await expect(result).toBeEnabled();
    await result.click();
    await dialog.getByLabel('Note (optional)').fill('From the emergency department');
    await dialog.getByTestId('admit-review').click();
    await expect(dialog.getByTestId('admit-confirm')).toContainText('Greta Fixture');
    await dialog.getByRole('button', { name: 'Confirm admission' }).click();
    await expect(dialog).toBeHidden();
    await expect(panel).toHaveAttribute('data-admitted', 'true');
    await expect(panel.getByTestId('admission-patient')).toHaveText('Greta Fixture');
    await expect(panel).toContainText(NURSE.displayName);

    await page.getByRole('link', { name: '← Board' }).click();
    await expect(tile.getByTestId('bed-tile-patient')).toContainText(/Greta Fixture · SYN-/);
    await expect(tile).toHaveAttribute('data-patient-id', /[0-9a-f-]{36}/);
    await shot(page, 'ward-13-admitted-bed');

    // The patient's record: the current bed and the readings of the bed since the admission.
    await tile.click();
    await panel.getByRole('link', { name: 'Open record' }).click();
    const ward = page.getByTestId('patient-ward');
    await expect(page.getByTestId('patient-detail')).toContainText(/FIXTURE, Greta/);
    await expect(ward.getByTestId('patient-current-bed')).toHaveAttribute('data-bed', 'ADM/1');
    await expect(ward.getByTestId('patient-stays')).toHaveAttribute('data-stays', '1');
    await expect
      .poll(
        async () => {
          await ward.getByRole('button', { name: 'Reload' }).click();
          return Number(await ward.getByTestId('patient-vitals').getAttribute('data-minutes'));
        },
        { timeout: 20_000, intervals: [1_500] },
      )
      .toBeGreaterThan(0);
    await shot(page, 'ward-14-patient-record');

    // Discharge from the bed view: the tile says so again.
    await ward.getByRole('link', { name: 'ADM · 1' }).click();
    await expect(panel).toHaveAttribute('data-admitted', 'true');
    await panel.getByRole('button', { name: 'Discharge…' }).click();
    const discharge = page.getByTestId('discharge-dialog');
    await discharge.getByLabel('Note (optional)').fill('Home');
    await discharge.getByRole('button', { name: 'Confirm discharge' }).click();
    await expect(discharge).toBeHidden();
    await expect(panel).toHaveAttribute('data-admitted', 'false');
    await page.getByRole('link', { name: '← Board' }).click();
    await expect(tile.getByTestId('bed-tile-patient')).toHaveText('No patient admitted');
    expect(await cspViolations(page)).toEqual([]);
  } finally {
    clearInterval(timer);
    await client.endAsync();
  }
});
