/**
 * FHIR sync as a physician meets it, in Chromium against the headless host, which is configured with
 * one FHIR server (playwright.config.ts). That server (Medplum's router + MemoryRepository on loopback)
 * is started here only: until then the host sees it unreachable. The physician registers a patient,
 * opens Sync from the top bar's count, sends now; someone edits the patient on the server while the
 * physician edits it here; the Sync screen shows the conflict side by side and the physician merges it
 * element by element. The server and the local record end with the chosen elements.
 */
import type { Patient as FhirPatient } from '@medplum/fhirtypes';
import { expect, test } from '@playwright/test';
import { startLoopbackFhirServer, type LoopbackFhirServer } from '../support/fhir-server.js';
import { shot, signInAs, type Account } from './support.js';

const PHYSICIAN: Account = {
  username: 'physician.sync.e2e',
  displayName: 'Dr Sam Sync',
  roleLabel: 'Physician',
  temporaryPassword: 'temporary sync physician 1',
  password: 'sync e2e physician password',
};

let server: LoopbackFhirServer;
test.beforeAll(async () => {
  server = await startLoopbackFhirServer({ port: Number(process.env.NEUROWARD_E2E_FHIR_PORT ?? 4795) });
});
test.afterAll(async () => {
  await server?.close();
});

const onServer = (id: string) => server.repo.current('Patient', id) as FhirPatient | null;

test('a conflict made on the server and here is shown side by side and merged element by element', async ({ page }) => {
  test.setTimeout(120_000);
  await signInAs(page, PHYSICIAN);

  // A new patient, registered here.
  await page.getByTestId('nav').getByTestId('nav-patients').click();
  await page.getByRole('button', { name: 'New patient' }).click();
  const form = page.getByTestId('new-patient');
  await form.getByLabel('Given name').fill('Merle');
  await form.getByLabel('Family name').fill('Original');
  await form.getByLabel('Birth date').fill('1972-04-05');
  await form.getByLabel('Sex').selectOption('female');
  await form.getByRole('button', { name: /register|create|save/i }).click();
  await expect(page.getByTestId('patient-detail')).toBeVisible();
  const patientId = decodeURIComponent(new URL(page.url()).hash.split('/').at(-1)!);
  expect(patientId).toMatch(/^[0-9a-f-]{36}$/);

  // The top bar's queued-changes count opens Sync; "Retry now" sends at once (whatever the retry clock says).
  await page.getByTestId('connectivity').click();
  await expect(page.getByTestId('area-sync')).toBeVisible();
  await page.getByTestId('sync-run-now').click();
  await expect.poll(() => onServer(patientId)?.name?.[0]?.family, { timeout: 30_000 }).toBe('Original');
  await expect(page.getByTestId('sync-server-hospital')).toHaveAttribute('data-reachable', 'true');
  await expect(page.getByTestId('connectivity')).toContainText(/online/i, { timeout: 40_000 });

  // Someone edits the record on the server (family name and sex)...
  const theirs = onServer(patientId)!;
  theirs.name = [{ use: 'official', family: 'Theirs', given: ['Merle'] }];
  theirs.gender = 'other';
  const put = await fetch(`${server.baseUrl}/Patient/${patientId}`, { method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(theirs) });
  expect(put.status).toBe(200);

  // ...while the physician edits it here (family name and birth date).
  await page.goto(`/#/patients/${patientId}`);
  await page.getByRole('button', { name: 'Edit demographics' }).click();
  const edit = page.getByTestId('edit-demographics');
  await edit.getByLabel('Family name').fill('Mine');
  await edit.getByLabel('Birth date').fill('1972-04-06');
  await edit.getByRole('button', { name: 'Save changes' }).click();
  await expect(page.getByRole('heading', { name: 'MINE, Merle' })).toBeVisible();

  // The change is sent on its own; the server refuses it (If-Match): a conflict, on the Sync screen.
  await page.getByTestId('connectivity').click();
  const conflict = page.locator('[data-testid^="sync-conflict-"]').first();
  await expect(conflict).toBeVisible({ timeout: 30_000 });
  await expect(conflict).toContainText(`Patient/${patientId}`);
  const row = (field: string) => conflict.getByTestId(`sync-field-${field}`);
  for (const field of ['name', 'gender', 'birthDate']) await expect(row(field)).toHaveAttribute('data-differs', 'true');
  await expect(row('name')).toContainText('Original');
  await expect(row('name')).toContainText('Mine');
  await expect(row('name')).toContainText('Theirs');
  // Changed on both sides: no side proposed, merging waits for a choice.
  const merge = conflict.getByRole('button', { name: 'Merge chosen elements' });
  await expect(merge).toBeDisabled();
  await shot(page, 'sync-conflict');

  await row('name').getByRole('radio', { name: 'theirs' }).check();
  await expect(row('birthDate').getByRole('radio', { name: 'mine' })).toBeChecked();
  await expect(row('gender').getByRole('radio', { name: 'theirs' })).toBeChecked();
  await row('gender').getByRole('radio', { name: 'mine' }).check();
  await shot(page, 'sync-conflict-merge-chosen');
  await merge.click();

  await expect(page.getByTestId('sync-notice')).toContainText('merged copy was written to server "hospital"');
  await expect(page.getByTestId('sync-notice')).toContainText('local record');
  await expect(page.getByTestId('sync-no-conflicts')).toBeVisible();
  await shot(page, 'sync-resolved');

  // The server holds the chosen elements: family from theirs, birth date and sex from mine.
  const merged = onServer(patientId)!;
  expect({ family: merged.name?.[0]?.family, birthDate: merged.birthDate, gender: merged.gender }).toEqual({ family: 'Theirs', birthDate: '1972-04-06', gender: 'female' });
  // And so does the local record.
  await page.goto(`/#/patients/${patientId}`);
  await expect(page.getByRole('heading', { name: 'THEIRS, Merle' })).toBeVisible();
  await expect(page.getByTestId('patient-detail')).toContainText('1972-04-06');
  await expect(page.getByTestId('patient-detail')).toContainText('Female');
});
