/**
 * Scheduling through the UI (headless host + Chromium): a receptionist adds the MRI scanner with its
 * opening hours, picks a free time, holds and books it for a patient, and takes the patient through
 * the day's flow (arrived → in the room → done). Screenshots per step (test-results/screens/schedule-*).
 * (A minute boundary at half past the hour between the page's search and the test's clock reading
 * could shift the first free time; the test reads the clock right after the slots load.)
 */
import { expect, test } from '@playwright/test';
import { shot, signInAs, type Account } from './support.js';

const RECEPTIONIST: Account = {
  username: 'reception.e2e',
  displayName: 'Rita Reception',
  roleLabel: 'Receptionist',
  temporaryPassword: 'temporary reception pass 1',
  password: 'reception e2e password',
};

/**
 * A fixed-offset zone where it is now between 10:00 and 11:00 (Etc/GMT-N is UTC+N), and today's date
 * there: the scanner opens 09:00–17:00 on that clock, so there are free times later today whenever
 * the test runs, and the patient can arrive for one.
 */
function morningZone(): { zone: string; today: string } {
  const hour = new Date().getUTCHours();
  const offset = Math.max(-12, Math.min(14, 10 - hour));
  const zone = offset === 0 ? 'Etc/GMT' : `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`;
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
  return { zone, today };
}

test('a receptionist adds the scanner and its hours, books a free time for a patient and checks them in', async ({ page }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1280, height: 800 });
  await signInAs(page, RECEPTIONIST);
  await page.getByTestId('nav').getByTestId('nav-schedule').click();
  const area = page.getByTestId('area-schedule');
  await expect(area).toBeVisible();
  await shot(page, 'schedule-01-empty');

  const run = Date.now().toString(36);
  const scanner = `MRI e2e ${run}`;
  await area.getByRole('button', { name: 'New resource…' }).click();
  const resourceDialog = page.getByTestId('resource-dialog');
  await resourceDialog.getByLabel('Kind').selectOption('device');
  await resourceDialog.getByLabel('Name').fill(scanner);
  const { zone, today } = morningZone();
  await resourceDialog.getByLabel('Time zone').fill(zone);
  await resourceDialog.getByLabel('Slot grid (min)').selectOption('30');
  await resourceDialog.getByRole('button', { name: 'Create' }).click();
  await expect(resourceDialog).toBeHidden();
  await expect(area.getByLabel('Practitioner, room or device').locator('option:checked')).toHaveText(`${scanner} (device)`);

  await area.getByLabel('Day', { exact: true }).fill(today);
  await area.getByRole('button', { name: 'Opening hours…' }).click();
  const hours = page.getByTestId('hours-dialog');
  for (const day of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']) await hours.getByLabel(day).check();
  await hours.getByLabel('Opens').fill('09:00');
  await hours.getByLabel('Closes').fill('17:00');
  await shot(page, 'schedule-02-hours');
  await hours.getByRole('button', { name: 'Add hours' }).click();
  await expect(hours).toBeHidden();

  // 09:00–17:00 on the scanner's clock (now 10:xx there), 30-minute appointments on its 30-minute grid:
  // the free times are those still to come today, the last at 16:30.
  const slots = area.getByTestId('free-slot');
  const times = ['11:00', '11:30', '12:00', '12:30', '13:00', '13:30', '14:00', '14:30', '15:00', '15:30', '16:00', '16:30'];
  const halfPast = new Date().getUTCMinutes() < 30;
  await expect(slots).toHaveText(halfPast ? ['10:30', ...times] : times);
  await shot(page, 'schedule-03-free-times');

  await slots.filter({ hasText: '12:00' }).click();
  const book = page.getByTestId('book-dialog');
  await book.getByLabel('Find the patient').fill('Fixture');
  await book.getByTestId('book-patient').filter({ hasText: 'Greta Fixture' }).click();
  await expect(book.getByTestId('book-held')).toContainText('Held for you until');
  await book.getByLabel('What for').fill('Follow-up MRI brain');
  await shot(page, 'schedule-04-book-held');
  await book.getByRole('button', { name: 'Book for Greta Fixture' }).click();
  await expect(book).toBeHidden();

  const row = area.getByTestId('appointment-row');
  await expect(row).toHaveCount(1);
  await expect(row).toHaveAttribute('data-status', 'booked');
  await expect(row).toContainText('12:00–12:30');
  await expect(row).toContainText('Greta Fixture');
  await expect(slots).toHaveText((halfPast ? ['10:30', ...times] : times).filter((t) => t !== '12:00'));
  await shot(page, 'schedule-05-booked');

  // The day's flow, by keyboard: each action is a focusable button.
  await row.getByRole('button', { name: 'Arrived' }).focus();
  await page.keyboard.press('Enter');
  await expect(row).toHaveAttribute('data-status', 'arrived');
  await row.getByRole('button', { name: 'In room' }).click();
  await expect(row).toHaveAttribute('data-status', 'checked-in');
  await row.getByRole('button', { name: 'Done' }).click();
  await expect(row).toHaveAttribute('data-status', 'fulfilled');
  await shot(page, 'schedule-06-done');

  // Nothing cut off at 1280×800: the two columns fit the window.
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(1280);
});
