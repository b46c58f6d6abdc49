/**
 * The pieces of the AI read's summary and report that need no model (read-summary.ts, fhir-report.ts,
 * ai-read-service.ts uidFromUuid), on constructed inputs whose answers are known by hand.
 */
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { AiCluster, AiRegion } from '../../src/shared/ipc.js';
import { uidFromUuid } from '../../src/main/analysis/ai-read-service.js';
import { decidedReport, deviceIdOf } from '../../src/main/analysis/fhir-report.js';
import { clusterSummary, encodePng, heatMapPicture, voxelToMm, withPrior } from '../../src/main/analysis/read-summary.js';
import type { TensorMaps } from '../../src/main/imaging/types.js';
import type { ClusterResult } from '../../src/main/analysis/clusters.js';

const region = (mm: [number, number, number], fa: number, md: number, volumeMl = 0.5): AiRegion => ({
  centroidVoxel: [0, 0, 0],
  centroidMm: mm,
  voxels: 10,
  volumeMl,
  slices: [0],
  probability: 0.9,
  cluster: 1,
  fa: { inside: fa, clusterElsewhere: 0.45 },
  md: { inside: md, clusterElsewhere: 0.0008 },
  prior: null,
});
const cluster = (k: number, fa: number, md: number): AiCluster => ({ cluster: k, voxels: 100, volumeMl: 1, meanFa: fa, meanMd: md, prior: null });

describe('AI read summary', () => {
  it('averages FA and MD per cluster and gives its volume from the voxel size', () => {
    const labels = Uint8Array.from([0, 1, 1, 2, 2, 2]);
    const fa = Float32Array.from([0.9, 0.2, 0.4, 0.5, 0.6, 0.7]);
    const md = Float32Array.from([1, 1e-3, 3e-3, 1e-3, 1e-3, 1e-3]);
    const summary = clusterSummary({ clusters: { labels } as ClusterResult, maps: { fa, md } as unknown as TensorMaps }, [2, 2, 2.5]);
    expect(summary).toHaveLength(2);
    expect(summary[0]).toMatchObject({ cluster: 1, voxels: 2, volumeMl: 0.02, prior: null });
    expect(summary[0]!.meanFa).toBeCloseTo(0.3, 6);
    expect(summary[0]!.meanMd).toBeCloseTo(2e-3, 9);
    expect(summary[1]!.meanFa).toBeCloseTo(0.6, 6);
    expect(summary[1]!.volumeMl).toBeCloseTo(0.03, 9);
  });

  it('maps a voxel to scanner mm through the affine', () => {
    const affine: [number[], number[], number[], number[]] = [
      [-2, 0, 0, 90],
      [0, 2, 0, -120],
      [0, 0, 3, -60],
      [0, 0, 0, 1],
    ];
    expect(voxelToMm(affine, [10, 20, 5])).toEqual([70, -80, -45]);
  });

  it('compares each cluster with the same-numbered prior one, and a region with the nearest prior region within 15 mm', () => {
    const prior = { clusters: [cluster(1, 0.5, 0.0007), cluster(2, 0.2, 0.0009)], regions: [region([0, 0, 0], 0.3, 0.0012, 0.4), region([12, 0, 0], 0.25, 0.0014)] };
    const now = withPrior([region([10, 0, 0], 0.2, 0.0015), region([40, 0, 0], 0.2, 0.0015)], [cluster(1, 0.45, 0.0008), cluster(3, 0.1, 0.003)], prior);
    expect(now.clusters[0]!.prior!.faChange).toBeCloseTo(-0.05, 9);
    expect(now.clusters[0]!.prior!.mdChange).toBeCloseTo(0.0001, 12);
    expect(now.clusters[1]!.prior).toBeNull(); // no prior cluster 3
    // Nearest of the two prior regions (2 mm away, not the one 10 mm away).
    expect(now.regions[0]!.prior).toMatchObject({ distanceMm: 2, priorVolumeMl: 0.5 });
    expect(now.regions[0]!.prior!.faChange).toBeCloseTo(-0.05, 9);
    expect(now.regions[1]!.prior).toBeNull(); // 28 mm from anything
    expect(withPrior([region([0, 0, 0], 0.2, 0.001)], [], null).regions[0]!.prior).toBeNull();
  });

  it('encodes an RGB PNG whose IDAT inflates to one filter byte plus the row per row, with a valid CRC per chunk', () => {
    const rgb = Uint8Array.from({ length: 3 * 4 * 2 }, (_, i) => i * 10);
    const png = encodePng(rgb, 4, 2);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.readUInt32BE(16)).toBe(4);
    expect(png.readUInt32BE(20)).toBe(2);
    const idatLength = png.readUInt32BE(33);
    const raw = inflateSync(png.subarray(41, 41 + idatLength));
    expect([...raw.subarray(0, 13)]).toEqual([0, ...rgb.subarray(0, 12)]);
    // CRC-32 of "IEND" (no data) is AE 42 60 82, as in every PNG.
    expect([...png.subarray(png.length - 4)]).toEqual([0xae, 0x42, 0x60, 0x82]);
    expect(() => encodePng(rgb, 5, 2)).toThrow(/bytes for 5×2/);
  });

  it('draws the heat map over FA on one slice, top row = the grid\'s last y row, scaled to ≥ 256 px', () => {
    const dims: [number, number, number] = [64, 32, 2];
    const fa = new Float32Array(64 * 32 * 2);
    const heat = new Float32Array(64 * 32 * 2);
    heat[1 * 64 * 32 + 31 * 64 + 0] = 1; // slice 1, y = 31 (top), x = 0: full heat → white-ish
    const picture = heatMapPicture(fa, heat, dims, 1);
    expect([picture.width, picture.height, picture.slice]).toEqual([256, 128, 1]);
    const raw = inflateSync(picture.data.subarray(41, 41 + picture.data.readUInt32BE(33)));
    const topLeft = [...raw.subarray(1, 4)];
    const bottomLeft = [...raw.subarray((picture.height - 1) * (picture.width * 3 + 1) + 1, (picture.height - 1) * (picture.width * 3 + 1) + 4)];
    expect(topLeft[0]).toBeGreaterThan(200);
    expect(bottomLeft).toEqual([0, 0, 0]);
  });
});

describe('AI report resources', () => {
  it('turns a UUID into a DICOM UID under 2.25 (its 128 bits as a decimal integer)', () => {
    expect(uidFromUuid('00000000-0000-0000-0000-000000000001')).toBe('2.25.1');
    expect(uidFromUuid('ffffffff-ffff-ffff-ffff-ffffffffffff')).toBe('2.25.340282366920938463463374607431768211455');
  });

  it('names one Device per model hash', () => {
    expect(deviceIdOf('abc')).toBe(deviceIdOf('abc'));
    expect(deviceIdOf('abc')).not.toBe(deviceIdOf('abd'));
    expect(deviceIdOf('abc')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it('applies a decision: status, who, when, and the conclusion the radiologist gave', () => {
    const report = { resourceType: 'DiagnosticReport' as const, id: 'r', status: 'preliminary' as const, code: { text: 'x' }, conclusion: 'AI said no lesion.' };
    const observations = [{ resourceType: 'Observation' as const, id: 'o', status: 'preliminary' as const, code: { text: 'p' } }];
    const at = new Date('2026-12-02T10:00:00Z');
    const confirmed = decidedReport({ report, observations }, { status: 'final', by: 'Dr A (radiologist)', comment: 'agree', at });
    expect(confirmed.report).toMatchObject({ status: 'final', issued: '2026-12-02T10:00:00.000Z', resultsInterpreter: [{ display: 'Dr A (radiologist)' }] });
    expect(confirmed.report.conclusion).toBe('AI said no lesion. Confirmed by Dr A (radiologist): agree.');
    expect(confirmed.observations[0]).toMatchObject({ status: 'final', performer: [{ display: 'Dr A (radiologist)' }] });
    const amended = decidedReport({ report, observations }, { status: 'amended', by: 'Dr A', comment: 'lesion seen', conclusion: 'Small lesion, left.', at });
    expect(amended.report.conclusion).toMatch(/^Small lesion, left\. \(Radiologist's amendment of the AI read\. Amended by Dr A: lesion seen\. AI read was: AI said no lesion\.\)$/);
    expect(amended.observations[0]!.status).toBe('final');
    const rejected = decidedReport({ report, observations }, { status: 'entered-in-error', by: 'Dr A', comment: 'artefact', at });
    expect(rejected.report.status).toBe('entered-in-error');
    expect(rejected.observations[0]!.status).toBe('entered-in-error');
    // The input is left as it was.
    expect(report.status).toBe('preliminary');
  });
});
