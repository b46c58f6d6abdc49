/**
 * A person's first day with the workstation, in Debian's Chromium against the headless host:
 * first-run setup, sign-in per role, the signed-in home, the audit log's verification, break-glass,
 * the lock screen and a page reload. Screenshots per step under test-results/screens/.
 */
import { expect, test, type Page } from '@playwright/test';
import { readLaunchFile } from '../../src/main/hosts/launch-secret.js';

const STORE_PASSPHRASE = 'e2e store passphrase, long';
const ADMIN = { username: 'admin.e2e', displayName: 'Avery Admin', password: 'admin e2e password' };
const demoPasswords = new Map<string, string>();

const shot = (page: Page, name: string) => page.screenshot({ path: `test-results/screens/${name}.png`, fullPage: false });

async function signIn(page: Page, username: string, password: string) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('home')).toBeVisible();
}
async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
}

test.describe.configure({ mode: 'serial' });

test('a browser without this launch\'s key is refused; the printed address opens the app and leaves no key in the address bar', async ({ browser, baseURL }) => {
  // An empty storage state: Playwright would otherwise hand this context the launch cookie of the config.
  const stranger = await browser.newContext({ baseURL, storageState: { cookies: [], origins: [] }, viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
  try {
    const page = await stranger.newPage();
    const refused = await page.goto('/');
    expect(refused?.status()).toBe(401);
    await expect(page.getByRole('heading', { name: 'Open NeuroWard from the address it printed' })).toBeVisible();
    await shot(page, '00-no-launch-key');
    // The address `npm start` printed, from the launch file in the data dir (mode 600).
    const launch = readLaunchFile(process.env.NEUROWARD_E2E_DATA_DIR!);
    await page.goto(launch.launchUrl);
    await expect(page.getByRole('button', { name: 'Set up workstation' })).toBeVisible();
    expect(page.url()).toBe(`${baseURL}/`);
    const cookies = await stranger.cookies();
    expect(cookies.find((c) => c.name === launch.cookieName)).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    // The page cannot read the key.
    expect(await page.evaluate(() => document.cookie)).toBe('');
  } finally {
    await stranger.close();
  }
});

test('first run: store passphrase, administrator, demo accounts shown once', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('button', { name: 'Set up workstation' })).toBeVisible();
  await page.getByLabel('Store passphrase', { exact: true }).fill(STORE_PASSPHRASE);
  await page.getByLabel('Confirm store passphrase').fill(`${STORE_PASSPHRASE} typo`);
  await page.getByLabel('Username').fill(ADMIN.username);
  await page.getByLabel('Display name').fill(ADMIN.displayName);
  await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
  await page.getByLabel('Confirm password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Set up workstation' }).click();
  // A mismatch is caught before anything is created.
  await expect(page.getByText(/passphrases do not match/i)).toBeVisible();
  await page.getByLabel('Confirm store passphrase').fill(STORE_PASSPHRASE);
  await shot(page, '01-first-run-setup');
  await page.getByRole('button', { name: 'Set up workstation' }).click();

  const table = page.getByTestId('demo-accounts');
  await expect(table).toBeVisible({ timeout: 30_000 });
  for (const row of await table.locator('tbody tr').all()) {
    const cells = await row.locator('td').allInnerTexts();
    demoPasswords.set(cells[0]!.trim(), cells[2]!.trim());
  }
  expect([...demoPasswords.keys()].sort()).toEqual(['demo.nurse', 'demo.physician', 'demo.radiologist', 'demo.receptionist']);
  await shot(page, '02-demo-accounts-once');
  await page.getByRole('button', { name: 'Continue to sign-in' }).click();
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
});

test('the administrator signs in, sees admin areas only, and the audit chain verifies', async ({ page }) => {
  await page.goto('/');
  await page.getByLabel('Username').fill(ADMIN.username);
  await page.getByLabel('Password', { exact: true }).fill('wrong password here');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText('Wrong username or password.')).toBeVisible();
  await signIn(page, ADMIN.username, ADMIN.password);
  const nav = page.getByTestId('nav');
  await expect(nav.getByTestId('nav-admin')).toBeVisible();
  await expect(nav.getByTestId('nav-sync')).toBeVisible();
  await expect(nav.getByTestId('nav-viewer')).toHaveCount(0);
  await expect(nav.getByTestId('nav-patients')).toHaveCount(0);
  await expect(page.getByTestId('connectivity')).toContainText(/offline/i);
  await shot(page, '03-home-admin');

  await nav.getByTestId('nav-admin').click();
  await page.getByRole('tab', { name: /audit/i }).click();
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await expect(page.getByTestId('audit-verify-result')).toContainText(/Chain intact — \d+ entries/);
  await expect(page.getByTestId('audit-table')).toContainText('auth.sign-in');
  // The list reloads after each verification: the verification's own entry is on top.
  const verifications = await page.getByTestId('audit-row').filter({ hasText: 'audit.verify' }).count();
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await expect(page.getByTestId('audit-row').filter({ hasText: 'audit.verify' })).toHaveCount(verifications + 1);
  await expect(page.getByTestId('audit-row').first()).toContainText('audit.verify');
  // The action filter finds a part of a name.
  await page.getByLabel('Action').fill('sign');
  await expect(page.getByTestId('audit-row').first()).toContainText('auth.sign-in');
  await page.getByLabel('Action').fill('');
  await shot(page, '04-admin-audit-verified');
  await signOut(page);
});

test('a nurse signs in to a role-aware home', async ({ page }) => {
  await page.goto('/');
  await signIn(page, 'demo.nurse', demoPasswords.get('demo.nurse')!);
  const nav = page.getByTestId('nav');
  // Sync is open to every role (whether one's work has left the workstation); resolving is not (roles.ts).
  for (const area of ['ward', 'schedule', 'patients', 'sync']) await expect(nav.getByTestId(`nav-${area}`)).toBeVisible();
  for (const area of ['viewer', 'admin']) await expect(nav.getByTestId(`nav-${area}`)).toHaveCount(0);
  await expect(page.getByTestId('current-user')).toContainText('Nurse Nia Demo');
  // The cards say what works today and mark what does not exist yet.
  await expect(page.getByTestId('home-card-schedule')).toContainText('Coming: week views');
  await expect(page.getByTestId('home-card-ward')).not.toContainText('Coming');
  await shot(page, 'home-signed-in');
});

test('a restricted record opens only with break-glass and a typed reason', async ({ page }) => {
  await page.goto('/');
  await signIn(page, 'demo.nurse', demoPasswords.get('demo.nurse')!);
  await page.getByTestId('nav').getByTestId('nav-patients').click();
  const list = page.getByTestId('patients-list');
  await expect(list).toContainText('SYNTHETIC');
  await expect(list).toContainText('Restricted record');
  await page.getByRole('button', { name: 'Break glass' }).first().click();
  await page.getByLabel('Reason').fill('Collapsed on ward 4; need allergy history now');
  await shot(page, '05-break-glass-dialog');
  await page.getByRole('button', { name: 'Grant emergency access' }).click();
  await expect(page.getByTestId('break-glass-badge')).toBeVisible();
  // Granting opens the record that asked for it.
  await expect(page.getByTestId('patient-detail')).toContainText(/Confidentia/i);
  await expect(page.getByTestId('patient-detail')).toContainText(/Opened under break glass/i);
  await shot(page, '06-break-glass-record');
});

test('lock screen, wrong password, unlock; a reload comes back locked', async ({ page }) => {
  await page.goto('/');
  const password = demoPasswords.get('demo.physician')!;
  await signIn(page, 'demo.physician', password);
  await page.getByRole('button', { name: 'Lock' }).click();
  await expect(page.getByRole('button', { name: 'Unlock' })).toBeVisible();
  await page.getByLabel('Password', { exact: true }).fill('not my password');
  await page.getByRole('button', { name: 'Unlock' }).click();
  await expect(page.getByText('Wrong password.')).toBeVisible();
  await shot(page, '07-lock-screen');
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Unlock' }).click();
  await expect(page.getByTestId('home')).toBeVisible();

  await page.reload();
  await expect(page.getByRole('button', { name: 'Unlock' })).toBeVisible();
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Unlock' }).click();
  await expect(page.getByTestId('home')).toBeVisible();
});
