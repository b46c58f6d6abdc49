/**
 * `neuroward dti` (the built CLI) and issue 8 items 8–9: without a terminal, progress comes as a line at
 * each 10 % of a stage (never every 1 %); a series without diffusion contrast is said so by `dti info`
 * and `dti fit` (stderr and summary.json); an unmasked fit's summary reports no masked voxels.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ProgressLines } from '../../src/cli/dti.js';
import { sharedData } from '../support/shared-data.js';

const CLI = path.resolve('dist/cli/neuroward.js');
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const GE = () => sharedData('dwi-ge', 'In', '01_Ax_DWI_TENSOR_R2');

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
});

describe('progress', () => {
  it('without a terminal: a line per 10 % step of each stage, nothing in between', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'nw-dti-progress-'));
    const result = cli('dti', 'fit', sharedData('dwi-siemens-mosaic', 'In', '4_DWI_SagAPmosaic'), '--out', out);
    expect(result.status, result.stderr).toBe(0);
    const lines = result.stderr.trim().split('\n');
    const progress = lines.map((l) => /^(reading|brain mask|fitting) (\d+)%$/.exec(l)).filter((m): m is RegExpExecArray => m !== null);
    expect(progress.length).toBe(lines.length);
    for (const m of progress) expect(Number(m[2]) % 10, m[0]).toBe(0);
    const perStage = new Map<string, number[]>();
    for (const m of progress) perStage.set(m[1]!, [...(perStage.get(m[1]!) ?? []), Number(m[2])]);
    expect([...perStage.keys()]).toEqual(['reading', 'brain mask', 'fitting']);
    for (const [stage, values] of perStage) {
      expect(values.length, stage).toBeLessThanOrEqual(11);
      expect(values, stage).toEqual([...values].sort((a, b) => a - b));
      expect(new Set(values).size, stage).toBe(values.length);
      expect(values.at(-1), stage).toBe(100);
    }
    // 48 slices: the fit alone would give 48 reports; 21 files, 42 reading reports.
    expect(perStage.get('fitting')).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  });

  it('on a terminal: one line per stage rewritten in place at every 1 %', () => {
    const written: string[] = [];
    const logged: string[] = [];
    const progress = new ProgressLines((l) => logged.push(l), { write: (t) => written.push(t) });
    for (let i = 0; i <= 200; i++) progress.report('fitting', i / 200);
    progress.end();
    expect(logged).toEqual([]);
    expect(written.length).toBe(102);
    expect(written[0]).toBe('\rfitting 0%');
    expect(written[100]).toBe('\rfitting 100%');
    expect(written.at(-1)).toBe('\n');
  });
});

describe('diffusion contrast and masks in the CLI', () => {
  it('dti info says the GE series has no diffusion contrast, and the Siemens one has', () => {
    const ge = cli('dti', 'info', GE());
    expect(ge.status, ge.stderr).toBe(0);
    expect(ge.stdout).toMatch(/diffusion contrast: NONE: No diffusion contrast: all 6 diffusion-weighted volumes are copies of the b=0 volume/);
    const json = JSON.parse(cli('dti', 'info', GE(), '--json').stdout) as { diffusionContrast: { status: string }; warnings: string[] };
    expect(json.diffusionContrast.status).toBe('absent');
    expect(json.warnings).toHaveLength(1);
    const siemens = cli('dti', 'info', sharedData('dwi-siemens-mosaic', 'In', '4_DWI_SagAPmosaic'));
    expect(siemens.stdout).toMatch(/diffusion contrast: yes \(mean signal drop \d+\.\d–\d+\.\d % inside the brain mask over 20 diffusion-weighted volumes\)/);
  });

  it('dti fit warns on stderr and in summary.json; unmasked, it reports no masked voxels', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'nw-dti-contrast-'));
    const masked = cli('dti', 'fit', GE(), '--out', path.join(out, 'masked'));
    expect(masked.status, masked.stderr).toBe(0);
    expect(masked.stderr).toMatch(/^warning: No diffusion contrast/m);
    const summary = JSON.parse(readFileSync(path.join(out, 'masked', 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ masked: true, diffusionContrast: { status: 'absent' }, warnings: [expect.stringMatching(/^No diffusion contrast/)] });
    expect(summary.maskedVoxels).toBeGreaterThan(0);
    expect(summary.maskedVoxels).toBe(summary.fittedVoxels);

    const unmasked = cli('dti', 'fit', GE(), '--out', path.join(out, 'unmasked'), '--no-mask');
    expect(unmasked.status, unmasked.stderr).toBe(0);
    const plain = JSON.parse(readFileSync(path.join(out, 'unmasked', 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(plain).toMatchObject({ masked: false, maskedVoxels: null, fittedVoxels: 256 * 256 * 2 });
    expect(JSON.parse(unmasked.stdout)).toMatchObject({ maskedVoxels: null });
  });
});
