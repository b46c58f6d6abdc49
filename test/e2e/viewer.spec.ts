/**
 * The radiologist's DTI viewer, in Debian's Chromium (WebGL through SwiftShader) against the headless
 * host: import a real GE diffusion series from the import roots with a live progress bar, registering
 * its patient from the DICOM data at the confirmation step (the series has no diffusion contrast: the
 * import and the viewer say so), read the b0 with the FA overlay, scroll slices, change window/level,
 * zoom/pan/reset, colour FA on a real Siemens series imported without a patient (flagged); a physician
 * reads without importing; a second GE series matches the registered patient exactly, the radiologist
 * confirms and the study shows in the patient's record; without WebGL the viewer falls back to CPU
 * rendering. Screenshots per step under test-results/screens/viewer-*.png.
 *
 * Self-sufficient: sets the workstation up if needed and creates its own accounts (support.ts).
 * Needs the host to allow importing from ../shared/data (NEUROWARD_IMPORT_ROOTS in playwright.config.ts).
 */
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { CHROMIUM_ARGS, CHROMIUM_PATH, E2E_STORAGE_STATE, cspViolations, recordCspViolations, shot, signInAs, viewportPixels, type Account } from './support.js';

const DATA = path.resolve('../shared/data');
const RADIOLOGIST: Account = {
  username: 'rad.viewer.e2e',
  displayName: 'Dr Ray Viewer',
  roleLabel: 'Radiologist',
  temporaryPassword: 'temporary viewer pass 1',
  password: 'viewer e2e radiologist pw',
};
const PHYSICIAN: Account = {
  username: 'phys.viewer.e2e',
  displayName: 'Dr Pia Viewer',
  roleLabel: 'Physician',
  temporaryPassword: 'temporary viewer pass 2',
  password: 'viewer e2e physician pw',
};

async function openViewer(page: Page): Promise<void> {
  await page.getByTestId('nav').getByTestId('nav-viewer').click();
  await expect(page.getByTestId('viewer')).toBeVisible();
}

async function openStudy(page: Page, description: string | RegExp): Promise<void> {
  await page.getByTestId('studies-list').getByRole('button', { name: description }).first().click();
  await expect(page.getByTestId('viewer-viewport')).toBeVisible();
  await expect.poll(async () => (await viewportPixels(page)).lit, { timeout: 30_000 }).toBeGreaterThan(0.02);
}

/**
 * Chooses the series, answers the patient step (`patient`: a radio of the decision, e.g. "Import without a
 * patient"; null: keep what the step chose, e.g. an exact match), and starts the import.
 */
async function importSeries(page: Page, series: string | RegExp, patient: string | RegExp | null, fill?: () => Promise<void>): Promise<void> {
  await expect(page.getByTestId('scan-results')).toBeVisible({ timeout: 30_000 });
  await page.getByTestId('scan-results').getByLabel(series).first().check();
  const decision = page.getByTestId('patient-decision');
  await expect(decision).toBeVisible();
  if (patient !== null) await decision.getByLabel(patient).check();
  await fill?.();
  await page.getByRole('button', { name: 'Import' }).click();
  const progress = page.getByTestId('import-progress');
  await expect(progress).toBeVisible();
  await expect(progress.getByRole('progressbar')).toBeVisible();
}

/** Opens the Siemens study, importing it first when an earlier test did not. */
async function openSiemensStudy(page: Page): Promise<void> {
  const list = page.getByTestId('studies-list');
  await expect(list).not.toHaveAttribute('aria-busy', 'true');
  if (!(await list.getByRole('button', { name: /DWI_SagAPmosaic/ }).count())) {
    await page.getByLabel('Folder path').fill(`${DATA}/dwi-siemens-mosaic`);
    await page.getByRole('button', { name: 'Scan' }).click();
    await importSeries(page, /DWI_SagAPmosaic/, /Import without a patient/);
    await expect(page.getByTestId('import-progress')).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
  }
  await openStudy(page, /DWI_SagAPmosaic/);
}

test.describe('with WebGL', () => {
  test.describe.configure({ mode: 'serial' });
  test.beforeEach(async ({ page }) => {
    await recordCspViolations(page);
  });
  test.afterEach(async ({ page }) => {
    expect(await cspViolations(page)).toEqual([]);
  });

  test('a radiologist imports the GE series and sees the FA overlay over the b0', async ({ page }) => {
    await signInAs(page, RADIOLOGIST);
    await openViewer(page);
    await expect(page.getByTestId('import-panel')).toBeVisible();

    // Browse the import roots to the GE folder: choosing a folder fills the path.
    await page.getByTestId('folder-browser').getByRole('button', { name: DATA }).click();
    await page.getByTestId('folder-browser').getByRole('button', { name: 'dwi-ge', exact: true }).click();
    await expect(page.getByLabel('Folder path')).toHaveValue(`${DATA}/dwi-ge`);
    await page.getByRole('button', { name: 'Scan' }).click();
    const results = page.getByTestId('scan-results');
    await expect(results).toBeVisible({ timeout: 30_000 });
    await expect(results).toContainText('Ax DWI TENSOR R2');
    await expect(results).toContainText('GE MEDICAL SYSTEMS');
    await expect(results).toContainText('1000 ×6');
    await shot(page, 'viewer-01-scan');

    // The confirmation step: the identity in the files, no local record like it: register the patient from it.
    await results.getByLabel(/Ax DWI TENSOR R2/).first().check();
    const decision = page.getByTestId('patient-decision');
    await expect(decision.getByTestId('dicom-identity')).toContainText('Patient ID dicom');
    await expect(decision.getByTestId('patient-match').locator('[data-kind]')).toHaveAttribute('data-kind', 'none');
    await expect(page.getByRole('button', { name: 'Import' })).toBeDisabled();
    await importSeries(page, /Ax DWI TENSOR R2/, 'Register a new patient from the DICOM data', async () => {
      const form = page.getByTestId('new-patient-from-dicom');
      await expect(form.getByLabel('Family name')).toHaveValue('Dicom');
      await expect(form.getByLabel('MRN')).toHaveValue('dicom');
      await form.getByLabel('Given name').fill('Test');
      await form.getByLabel('Birth date').fill('1980-01-01');
      await form.getByLabel('Sex').selectOption({ label: 'Unknown' });
    });
    await shot(page, 'viewer-02-import-progress');
    const progress = page.getByTestId('import-progress');
    await expect(progress).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
    await expect(progress).toContainText('Imported');
    await expect(progress).toContainText('for Test Dicom (MRN dicom)');
    // Its diffusion-weighted volumes are copies of its b0: said on import and in the viewer.
    await expect(page.getByTestId('import-warnings')).toContainText('No diffusion contrast');
    await expect(page.getByTestId('study-warnings')).toContainText('No diffusion contrast', { timeout: 30_000 });
    await expect(page.getByTestId('study-patient')).toContainText('Test Dicom');

    // The finished import opens itself: b0 with the FA overlay and its legend.
    await expect(page.getByRole('heading', { name: 'Ax DWI TENSOR R2' })).toBeVisible({ timeout: 30_000 });
    await expect(page.getByTestId('studies-list')).toContainText('Ax DWI TENSOR R2');
    await expect(page.getByLabel('Overlay')).toHaveValue('fa');
    const legend = page.getByTestId('overlay-legend');
    await expect(legend).toContainText('FA');
    await expect(legend).toContainText('0.0');
    await expect(legend).toContainText('1.0');
    await expect(legend).toContainText('unitless');
    await expect.poll(async () => (await viewportPixels(page)).lit, { timeout: 30_000 }).toBeGreaterThan(0.02);
    const backend = page.getByTestId('render-backend');
    await expect(backend).toHaveAttribute('data-backend', 'webgl');
    await expect(page.getByTestId('render-notice')).toHaveCount(0);
    await shot(page, 'viewer-03-fa-over-b0');
  });

  test('slices scroll by wheel, keys and slider; window/level by inputs and drag; zoom, pan, reset', async ({ page }) => {
    await signInAs(page, RADIOLOGIST);
    await openViewer(page);
    await openStudy(page, /Ax DWI TENSOR R2/);
    const sliceValue = page.getByTestId('slice-value');
    const viewport = page.getByTestId('viewer-viewport');
    const box = (await viewport.boundingBox())!;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;

    await expect(sliceValue).toHaveText('1 / 2');
    await page.mouse.move(cx, cy);
    await page.mouse.wheel(0, 120);
    await expect(sliceValue).toHaveText('2 / 2');
    await shot(page, 'viewer-04-slice-2');
    await viewport.focus();
    await page.keyboard.press('ArrowDown');
    await expect(sliceValue).toHaveText('1 / 2');
    await page.getByLabel('Slice').fill('1');
    await expect(sliceValue).toHaveText('2 / 2');

    // Window/level: typed values, then a drag.
    const before = await viewportPixels(page);
    await page.getByLabel('Window').fill('800');
    await page.getByLabel('Level').fill('400');
    await expect(page.getByLabel('Window')).toHaveValue('800');
    await expect.poll(async () => (await viewportPixels(page)).mean).not.toBeCloseTo(before.mean, 1);
    await shot(page, 'viewer-05-window-level');
    await page.mouse.move(cx, cy);
    await page.mouse.down();
    await page.mouse.move(cx + 80, cy + 40, { steps: 8 });
    await page.mouse.up();
    await expect(page.getByLabel('Window')).not.toHaveValue('800');

    // Zoom with the buttons and Ctrl+wheel, pan with a right-drag, then back.
    await page.getByRole('button', { name: 'Zoom in' }).click();
    await expect(page.getByTestId('zoom-value')).toHaveText('125%');
    await page.mouse.move(cx, cy);
    await page.keyboard.down('Control');
    await page.mouse.wheel(0, -100);
    await page.keyboard.up('Control');
    await expect(page.getByTestId('zoom-value')).not.toHaveText('125%');
    await page.mouse.move(cx, cy);
    await page.mouse.down({ button: 'right' });
    await page.mouse.move(cx - 60, cy - 30, { steps: 6 });
    await page.mouse.up({ button: 'right' });
    await shot(page, 'viewer-06-zoom-pan');
    await page.getByRole('button', { name: 'Zoom out' }).click();
    await page.getByRole('button', { name: 'Reset view' }).click();
    await expect(page.getByTestId('zoom-value')).toHaveText('100%');
    await expect(page.getByLabel('Window')).not.toHaveValue('800');

    // Every volume is browsable with its b-value.
    const volume = page.getByLabel('Volume');
    await expect(volume.locator('option')).toHaveCount(7);
    await volume.selectOption({ label: '2: b=1000' });
    await expect(page.getByTestId('viewer-viewport')).toBeVisible();
    await expect.poll(async () => (await viewportPixels(page)).lit).toBeGreaterThan(0.02);

    // Colour FA of this series: the legend is the direction key.
    await page.getByLabel('Overlay').selectOption({ label: 'Colour FA' });
    await expect(page.getByTestId('overlay-legend')).toContainText('L–R');
    await page.getByLabel('Opacity').fill('80');
    await shot(page, 'viewer-07-colour-fa-ge');
  });

  test('colour FA and MD on a real Siemens series, its folder typed in', async ({ page }) => {
    await signInAs(page, RADIOLOGIST);
    await openViewer(page);
    await page.getByLabel('Folder path').fill(`${DATA}/dwi-siemens-mosaic`);
    await page.getByRole('button', { name: 'Scan' }).click();
    await expect(page.getByTestId('scan-results')).toContainText('SIEMENS');
    await importSeries(page, /DWI_SagAPmosaic/, /Import without a patient/);
    await expect(page.getByTestId('import-progress')).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
    await expect(page.getByRole('heading', { name: 'DWI_SagAPmosaic' })).toBeVisible({ timeout: 30_000 });
    // Stored without a patient: flagged in the list and in the viewer; real contrast: no warning.
    await expect(page.getByTestId('no-patient-notice')).toContainText('belongs to no patient');
    await expect(page.getByTestId('studies-list').getByRole('button', { name: /DWI_SagAPmosaic/ }).first()).toContainText('No patient');
    await expect(page.getByTestId('import-warnings')).toHaveCount(0);
    await expect(page.getByTestId('study-warnings')).toHaveCount(0);
    await expect.poll(async () => (await viewportPixels(page)).coloured, { timeout: 30_000 }).toBeGreaterThan(0.05);
    await shot(page, 'viewer-08-fa-siemens');

    await page.getByLabel('Overlay').selectOption({ label: 'Colour FA' });
    await expect(page.getByTestId('overlay-legend')).toContainText('S–I');
    await expect.poll(async () => (await viewportPixels(page)).coloured, { timeout: 30_000 }).toBeGreaterThan(0.05);
    await shot(page, 'viewer-09-colour-fa');

    await page.getByLabel('Overlay').selectOption({ label: 'MD' });
    await expect(page.getByTestId('overlay-legend')).toContainText('mm²/s ×10⁻³');
    await expect.poll(async () => (await viewportPixels(page)).coloured, { timeout: 30_000 }).toBeGreaterThan(0.05);
    await page.getByLabel('Opacity').fill('0');
    await expect.poll(async () => (await viewportPixels(page)).coloured).toBeLessThan(0.02);
    await page.getByLabel('Opacity').fill('60');
    await shot(page, 'viewer-10-md');
  });

  test('a physician reads studies but cannot import', async ({ page }) => {
    await signInAs(page, PHYSICIAN);
    await openViewer(page);
    await expect(page.getByTestId('import-panel')).toHaveCount(0);
    await expect(page.getByLabel('Folder path')).toHaveCount(0);
    await openStudy(page, /DWI_SagAPmosaic/);
    await expect(page.getByTestId('overlay-legend')).toBeVisible();
    await shot(page, 'viewer-11-physician');
  });

  test('a second GE series matches the registered patient: the radiologist confirms, the study is in the record', async ({ page }) => {
    await signInAs(page, RADIOLOGIST);
    await openViewer(page);
    await page.getByLabel('Folder path').fill(`${DATA}/dwi-ge/In/02_Ax_DWI_TENSOR_R3`);
    await page.getByRole('button', { name: 'Scan' }).click();
    await expect(page.getByTestId('scan-results')).toContainText('Ax DWI TENSOR R3', { timeout: 30_000 });
    const decision = page.getByTestId('patient-decision');
    await expect(decision.getByTestId('dicom-identity')).toContainText('Patient ID dicom');
    const match = decision.getByTestId('patient-match');
    await expect(match.locator('[data-kind]')).toHaveAttribute('data-kind', 'exact');
    await expect(match).toContainText('Patient ID dicom is the MRN of Test Dicom (MRN dicom)');
    const confirm = decision.getByLabel(/Link to Test Dicom \(MRN dicom\)/);
    await expect(confirm).toBeChecked();
    await expect(decision).toContainText('✓ MRN');
    await shot(page, 'viewer-14-match-confirmation');
    await importSeries(page, /Ax DWI TENSOR R3/, null);
    const progress = page.getByTestId('import-progress');
    await expect(progress).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
    await expect(progress).toContainText('for Test Dicom (MRN dicom)');
    await expect(page.getByRole('heading', { name: 'Ax DWI TENSOR R3' })).toBeVisible({ timeout: 30_000 });

    // The study's patient line opens the record, which lists the patient's studies.
    await page.getByTestId('study-patient').getByRole('link', { name: /Test Dicom/ }).click();
    const record = page.getByTestId('patient-detail');
    await expect(record.getByRole('heading', { name: 'DICOM, Test' })).toBeVisible();
    const studies = record.getByTestId('patient-studies');
    await expect(studies.getByTestId('patient-study')).toHaveCount(2);
    await expect(studies).toContainText('Ax DWI TENSOR R3');
    await expect(studies).toContainText('Ax DWI TENSOR R2');
    await expect(studies).toContainText('No diffusion contrast');
    await shot(page, 'viewer-13-study-matched');
    // Back to the viewer from the record.
    await studies.getByRole('link', { name: 'Ax DWI TENSOR R3' }).click();
    await expect(page.getByRole('heading', { name: 'Ax DWI TENSOR R3' })).toBeVisible({ timeout: 30_000 });
  });
});

test.describe('without WebGL', () => {
  // Launch options force a new worker in Playwright, so this browser is launched by hand.
  test('the viewer falls back to CPU rendering and says so', async ({ playwright, baseURL }) => {
    const browser = await playwright.chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, '--disable-3d-apis', '--disable-webgl'] });
    try {
      const context = await browser.newContext({ baseURL, storageState: E2E_STORAGE_STATE, viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
      const page = await context.newPage();
      await recordCspViolations(page);
      await signInAs(page, RADIOLOGIST);
      await openViewer(page);
      await openSiemensStudy(page);
      await expect(page.getByTestId('render-notice')).toHaveText('WebGL unavailable — CPU rendering');
      await expect(page.getByTestId('render-backend')).toHaveAttribute('data-backend', 'cpu');
      await expect.poll(async () => (await viewportPixels(page)).coloured, { timeout: 30_000 }).toBeGreaterThan(0.05);
      await page.getByLabel('Overlay').selectOption({ label: 'Colour FA' });
      await page.getByRole('button', { name: 'Zoom in' }).click();
      await expect.poll(async () => (await viewportPixels(page)).coloured).toBeGreaterThan(0.05);
      await shot(page, 'viewer-12-cpu-fallback');
      expect(await cspViolations(page)).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
