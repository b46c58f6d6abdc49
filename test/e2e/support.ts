/**
 * Shared steps for end-to-end specs that must not depend on running after another spec: bring the
 * workstation to the sign-in screen whatever state it is in (first-run setup, locked store, someone
 * signed in), and get a signed-in account of a given role by creating it through Admin → Users when
 * it does not exist yet. Credentials are fixed so that every Playwright worker (a describe with its own
 * launch options runs in a new one) can sign in again against the same host.
 *
 * The administrator and store passphrase are the ones foundation.spec.ts sets up, so either spec can
 * be the first to run.
 */
import { expect, type Page } from '@playwright/test';

export const STORE_PASSPHRASE = 'e2e store passphrase, long';
/** Playwright storage state holding this launch's cookie (written by global-setup.ts from the host's launch file). */
export const E2E_STORAGE_STATE = 'test-results/e2e-launch-state.json';
export const ADMIN = { username: 'admin.e2e', displayName: 'Avery Admin', password: 'admin e2e password' };

/** The launch arguments of playwright.config.ts, for specs that add their own. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

export interface Account {
  username: string;
  displayName: string;
  /** As shown in the Role select of Admin → Users. */
  roleLabel: string;
  temporaryPassword: string;
  password: string;
}

export const shot = (page: Page, name: string) => page.screenshot({ path: `test-results/screens/${name}.png`, fullPage: false });

/**
 * Composites every canvas of the viewport (Cornerstone's or the CPU renderer's, plus the overlay
 * canvas) and measures the middle half: the share of lit pixels and of clearly coloured ones.
 */
export async function viewportPixels(page: Page): Promise<{ lit: number; coloured: number; mean: number; canvases: number }> {
  return page.getByTestId('viewer-viewport').evaluate((el) => {
    const r = el.getBoundingClientRect();
    const c = document.createElement('canvas');
    c.width = Math.max(1, Math.round(r.width));
    c.height = Math.max(1, Math.round(r.height));
    const ctx = c.getContext('2d');
    if (!ctx) return { lit: 0, coloured: 0, mean: 0, canvases: 0 };
    const canvases = [...el.querySelectorAll('canvas')];
    for (const cv of canvases) {
      const b = cv.getBoundingClientRect();
      if (b.width && b.height) ctx.drawImage(cv, b.left - r.left, b.top - r.top, b.width, b.height);
    }
    const w = Math.round(c.width / 2);
    const h = Math.round(c.height / 2);
    const d = ctx.getImageData(Math.round(c.width / 4), Math.round(c.height / 4), w, h).data;
    let lit = 0;
    let coloured = 0;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) {
      const R = d[i]!;
      const G = d[i + 1]!;
      const B = d[i + 2]!;
      sum += R + G + B;
      if (R + G + B > 45) lit++;
      if (Math.max(R, G, B) - Math.min(R, G, B) > 40) coloured++;
    }
    const n = w * h;
    return { lit: lit / n, coloured: coloured / n, mean: sum / (3 * n), canvases: canvases.length };
  });
}

/** Records Content-Security-Policy violations of the page (read them with `cspViolations`). */
export async function recordCspViolations(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const list: string[] = [];
    Reflect.set(window, '__cspViolations', list);
    document.addEventListener('securitypolicyviolation', (e) => list.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  });
}
export function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (Reflect.get(window, '__cspViolations') as string[] | undefined) ?? []);
}

/** Opens the app and leaves it on the sign-in screen (set up / unlocked / signed out as needed). */
export async function toSignIn(page: Page): Promise<void> {
  await page.goto('/');
  const setup = page.getByRole('button', { name: 'Set up workstation' });
  const unlockStore = page.getByTestId('screen-store-unlock');
  const signInButton = page.getByRole('button', { name: 'Sign in' });
  const signOutButton = page.getByRole('button', { name: 'Sign out' });
  await expect(setup.or(signInButton).or(signOutButton).or(unlockStore).first()).toBeVisible({ timeout: 30_000 });

  if (await setup.isVisible()) {
    const passphrase = page.getByLabel('Store passphrase', { exact: true });
    if (await passphrase.isVisible()) {
      await passphrase.fill(STORE_PASSPHRASE);
      await page.getByLabel('Confirm store passphrase').fill(STORE_PASSPHRASE);
    }
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Display name').fill(ADMIN.displayName);
    await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
    await page.getByLabel('Confirm password').fill(ADMIN.password);
    await setup.click();
    await expect(page.getByTestId('demo-accounts')).toBeVisible({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Continue to sign-in' }).click();
  } else if (await unlockStore.isVisible()) {
    await page.getByLabel('Store passphrase', { exact: true }).fill(STORE_PASSPHRASE);
    await page.getByRole('button', { name: 'Unlock' }).click();
  } else if (await signOutButton.isVisible()) {
    await signOutButton.click();
  }
  await expect(signInButton).toBeVisible();
}

/** Signs in; resolves true when the home (or the forced password change) appears, false on a refusal. */
export async function trySignIn(page: Page, username: string, password: string): Promise<boolean> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const home = page.getByTestId('home');
  const change = page.getByTestId('screen-change-password');
  const refused = page.getByRole('alert');
  await expect(home.or(change).or(refused).first()).toBeVisible();
  return (await home.isVisible()) || (await change.isVisible());
}

/**
 * Leaves `account` signed in on its home page. Creates it (as the administrator) the first time and
 * replaces the temporary password at its first sign-in.
 */
export async function signInAs(page: Page, account: Account): Promise<void> {
  await toSignIn(page);
  if (await trySignIn(page, account.username, account.password)) {
    await expect(page.getByTestId('home')).toBeVisible();
    return;
  }
  // Not there yet: the administrator creates it.
  await page.getByLabel('Username').fill(ADMIN.username);
  await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('home')).toBeVisible();
  await page.getByTestId('nav').getByTestId('nav-admin').click();
  await page.getByRole('tab', { name: 'Users' }).click();
  const form = page.getByTestId('create-user-form');
  await form.getByLabel('Username').fill(account.username);
  await form.getByLabel('Display name').fill(account.displayName);
  await form.getByLabel('Role').selectOption({ label: account.roleLabel });
  await form.getByLabel('Temporary password').fill(account.temporaryPassword);
  await form.getByRole('button', { name: 'Create user' }).click();
  await expect(page.getByTestId('users-table').locator(`[data-username="${account.username}"]`)).toBeVisible();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();

  expect(await trySignIn(page, account.username, account.temporaryPassword)).toBe(true);
  await expect(page.getByTestId('screen-change-password')).toBeVisible();
  await page.getByLabel('Current password').fill(account.temporaryPassword);
  await page.getByLabel('New password').fill(account.password);
  await page.getByLabel('Confirm password').fill(account.password);
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByTestId('home')).toBeVisible();
}
