/**
 * The AI second read in Debian's Chromium against the headless host (issue 9 item 8): a radiologist
 * imports the real Siemens mosaic for a patient registered from its DICOM data, runs the AI read and
 * follows its stages, sees the heat map and the tissue clusters over the image with their legends,
 * jumps to a region's slice, previews the FHIR report with its heat-map picture, and confirms the read;
 * a second read is rejected. A physician sees the decided reads but can neither run nor decide.
 * "Not for clinical diagnosis" shows wherever a finding does. Screenshots: test-results/screens/ai-*.png.
 * (Named to run after foundation.spec.ts, which meets the workstation before its first-run setup.)
 */
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { cspViolations, recordCspViolations, shot, signInAs, viewportPixels, type Account } from './support.js';

const DATA = path.resolve('../shared/data');
const RADIOLOGIST: Account = { username: 'rad.ai.e2e', displayName: 'Dr Ada Reader', roleLabel: 'Radiologist', temporaryPassword: 'temporary ai pass 1', password: 'ai e2e radiologist pw' };
const PHYSICIAN: Account = { username: 'phys.ai.e2e', displayName: 'Dr Finn Follow', roleLabel: 'Physician', temporaryPassword: 'temporary ai pass 2', password: 'ai e2e physician pw' };

async function runRead(page: Page): Promise<void> {
  const panel = page.getByTestId('ai-panel');
  await panel.getByRole('button', { name: /^Run the AI read/ }).click();
  const progress = panel.getByTestId('ai-progress');
  await expect(progress).toBeVisible();
  await expect(progress.getByRole('progressbar', { name: 'AI read progress' })).toBeVisible();
  // Stages go by: at least one is done while the read runs, each with its time.
  await expect(progress.locator('[data-state="done"]').first()).toBeVisible({ timeout: 60_000 });
}

/** The patient registered from the Siemens files (given and family name), for the physician's inbox. */
let patientName = '';

test.describe.configure({ mode: 'serial' });
test.beforeEach(async ({ page }) => {
  await recordCspViolations(page);
});
test.afterEach(async ({ page }) => {
  expect(await cspViolations(page)).toEqual([]);
});

test('a radiologist imports the Siemens series, runs the AI read, sees both overlays, previews the report and confirms', async ({ page }) => {
  test.setTimeout(300_000);
  await signInAs(page, RADIOLOGIST);
  await page.getByTestId('nav').getByTestId('nav-viewer').click();
  await page.getByLabel('Folder path').fill(`${DATA}/dwi-siemens-mosaic`);
  await page.getByRole('button', { name: 'Scan' }).click();
  await expect(page.getByTestId('scan-results')).toBeVisible({ timeout: 30_000 });
  await page.getByTestId('scan-results').getByLabel(/DWI_SagAPmosaic/).first().check();
  const decision = page.getByTestId('patient-decision');
  await decision.getByLabel('Register a new patient from the DICOM data').check();
  // The identity as the files give it (a change would need a reason); what they leave empty is filled in.
  const form = page.getByTestId('new-patient-from-dicom');
  for (const [label, value] of [
    ['Given name', 'Ada'],
    ['Family name', 'Mosaic'],
    ['Birth date', '1975-03-04'],
  ] as const)
    if (!(await form.getByLabel(label).inputValue())) await form.getByLabel(label).fill(value);
  if ((await form.getByLabel('Sex').inputValue()) === '') await form.getByLabel('Sex').selectOption({ label: 'Female' });
  patientName = `${await form.getByLabel('Given name').inputValue()} ${await form.getByLabel('Family name').inputValue()}`;
  await page.getByRole('button', { name: 'Import' }).click();
  await expect(page.getByTestId('import-progress')).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
  await expect(page.getByRole('heading', { name: 'DWI_SagAPmosaic' })).toBeVisible({ timeout: 30_000 });
  const panel = page.getByTestId('ai-panel');
  await expect(panel.getByTestId('ai-disclaimer')).toContainText('not for clinical diagnosis');
  await expect(panel).toContainText('No AI read of this study yet');
  await shot(page, 'ai-01-study-before-read');

  await runRead(page);
  await shot(page, 'ai-02-progress');
  const read = panel.getByTestId('ai-read');
  await expect(read).toBeVisible({ timeout: 240_000 });
  await expect(read).toHaveAttribute('data-status', 'preliminary');
  await expect(panel.getByTestId('ai-progress')).toHaveCount(0);
  await expect(read.getByTestId('ai-finding')).toHaveText(/Lesion suspected|No lesion found/);
  await expect(read).toContainText('Preliminary: awaiting a radiologist');
  await expect(panel.getByTestId('ai-clusters').locator('tbody tr')).toHaveCount(4);

  // The heat map over the b0, with its legend.
  await read.getByRole('button', { name: 'Heat map' }).click();
  await expect(page.getByLabel('Overlay', { exact: true })).toHaveValue('ai-heatmap');
  await expect(page.getByTestId('overlay-legend')).toContainText('AI heat map');
  await expect(page.getByTestId('overlay-legend')).toContainText('lesion evidence');
  const regions = panel.getByTestId('ai-regions').getByRole('button');
  if (await regions.count()) {
    // A region's button jumps to a slice within the region's (slider numbering, as listed).
    const [, from, to] = /slices (\d+)–(\d+)/.exec((await regions.first().textContent()) ?? '') ?? [];
    await regions.first().click();
    await expect
      .poll(async () => {
        const shown = Number(/^(\d+)/.exec((await page.getByTestId('slice-value').textContent()) ?? '')?.[1]);
        return shown >= Math.min(Number(from), Number(to)) && shown <= Math.max(Number(from), Number(to));
      })
      .toBe(true);
    await expect.poll(() => viewportPixels(page).then((p) => p.coloured), { timeout: 30_000 }).toBeGreaterThan(0);
  }
  await shot(page, 'ai-03-heat-map');

  // The tissue clusters: four flat colours over the brain.
  await read.getByRole('button', { name: 'Tissue clusters' }).click();
  await expect(page.getByLabel('Overlay', { exact: true })).toHaveValue('ai-clusters');
  await expect(page.getByTestId('overlay-legend')).toContainText('KMeans k = 4');
  await expect.poll(() => viewportPixels(page).then((p) => p.coloured), { timeout: 30_000 }).toBeGreaterThan(0.05);
  await shot(page, 'ai-04-clusters');

  // The report as queued: preliminary, with the heat-map picture.
  await panel.getByRole('button', { name: 'Preview the FHIR report' }).click();
  const report = panel.getByTestId('ai-report');
  await expect(report).toContainText('DiagnosticReport preliminary');
  await expect(report).toContainText('ImagingStudy');
  await expect(report.getByRole('img', { name: /AI heat map/ })).toBeVisible();
  await report.scrollIntoViewIfNeeded();
  await shot(page, 'ai-05-report-preview');

  // Confirm, with a comment: final.
  const decide = panel.getByTestId('ai-decision');
  await expect(decide.getByRole('button', { name: 'Confirm' })).toBeDisabled();
  await decide.getByLabel('Comment (required)').fill('Agree with the AI read after review of FA and MD.');
  await decide.getByRole('button', { name: 'Confirm' }).click();
  await expect(read).toHaveAttribute('data-status', 'final');
  await expect(read).toContainText('Confirmed (final)');
  await expect(panel.getByTestId('ai-decided')).toContainText('Agree with the AI read');
  await expect(panel.getByTestId('ai-decision')).toHaveCount(0);
  await shot(page, 'ai-06-confirmed');
});

test('a second read of the study is rejected with a comment', async ({ page }) => {
  test.setTimeout(300_000);
  await signInAs(page, RADIOLOGIST);
  await page.getByTestId('nav').getByTestId('nav-viewer').click();
  await page.getByTestId('studies-list').getByRole('button', { name: /DWI_SagAPmosaic/ }).first().click();
  const panel = page.getByTestId('ai-panel');
  await expect(panel.getByTestId('ai-read')).toHaveAttribute('data-status', 'final', { timeout: 30_000 });
  await runRead(page);
  await expect(panel.getByTestId('ai-read')).toHaveAttribute('data-status', 'preliminary', { timeout: 240_000 });
  const decide = panel.getByTestId('ai-decision');
  await decide.getByLabel('Comment (required)').fill('Motion artefact on slices 20-24; read not valid.');
  await decide.getByRole('button', { name: 'Reject' }).click();
  await expect(panel.getByTestId('ai-read')).toHaveAttribute('data-status', 'entered-in-error');
  await expect(panel.getByTestId('ai-read')).toContainText('Rejected (entered in error)');
  await shot(page, 'ai-07-rejected');

  // A third read, amended to "lesion suspected": the physicians are told in the app.
  await runRead(page);
  await expect(panel.getByTestId('ai-read')).toHaveAttribute('data-status', 'preliminary', { timeout: 240_000 });
  await decide.getByLabel('Comment (required)').fill('Small lesion seen on review, left periventricular.');
  await decide.getByRole('button', { name: 'Amend…' }).click();
  await decide.getByLabel('Your conclusion').fill('Small periventricular white-matter lesion, left; follow-up MRI advised.');
  await decide.getByLabel('Finding').selectOption({ label: 'Lesion suspected' });
  await decide.getByRole('button', { name: 'Save amendment' }).click();
  await expect(panel.getByTestId('ai-read')).toHaveAttribute('data-status', 'amended');
  await shot(page, 'ai-08-amended');
});

test('a physician reads the decided reads but cannot run or decide', async ({ page }) => {
  await signInAs(page, PHYSICIAN);
  await page.getByTestId('nav').getByTestId('nav-viewer').click();
  await page.getByTestId('studies-list').getByRole('button', { name: /DWI_SagAPmosaic/ }).first().click();
  const panel = page.getByTestId('ai-panel');
  await expect(panel.getByTestId('ai-read')).toBeVisible({ timeout: 30_000 });
  await expect(panel.getByTestId('ai-disclaimer')).toContainText('not for clinical diagnosis');
  await expect(panel.getByRole('button', { name: /Run the AI read/ })).toHaveCount(0);
  await expect(panel.getByTestId('ai-decision')).toHaveCount(0);
  await expect(panel.getByRole('combobox')).toBeVisible();
  await shot(page, 'ai-09-physician');

  // The amended suspected lesion is in the physician's inbox, newest first, with the patient (the first
  // read, confirmed, is there too when the model called it suspected).
  const inbox = page.getByTestId('inbox-button');
  await expect(inbox).toHaveText(/^Inbox \((1|2)\)$/);
  const unread = Number(/\((\d+)\)/.exec((await inbox.textContent()) ?? '')![1]);
  await inbox.click();
  const item = page.getByTestId('inbox').getByTestId('inbox-item').first();
  await expect(item).toContainText(`Suspected lesion amended for ${patientName}`);
  await expect(item).toContainText('follow-up MRI advised');
  await shot(page, 'ai-10-physician-inbox');
  await item.getByRole('link', { name: 'Open the patient' }).click();
  await expect(page.getByRole('heading', { name: new RegExp(patientName.split(' ').at(-1)!, 'i') })).toBeVisible();
  await expect(inbox).toHaveText(unread > 1 ? `Inbox (${unread - 1})` : 'Inbox');
});
