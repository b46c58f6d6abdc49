/**
 * The AI read inside the app (issue 9 items 6–8, 11), through the dispatcher as the screens call it:
 * a radiologist imports the real Siemens mosaic for a patient, runs the read (the pipeline on its
 * worker thread, the shipped model), sees progress per stage, gets a preliminary report queued as
 * valid FHIR R4 (DiagnosticReport → ImagingStudy, Observations, the heat map as a PNG Media), and
 * confirms, amends or rejects it; a physician is notified of a confirmed suspected lesion; a second
 * study of the same patient shows the change since the first. Refusals leave nothing behind.
 *
 * Expected values come from the definitions, not from the code under test: the model hash is
 * SHA-256(sha(model.json):sha(weights.bin)) of the shipped files; each cluster's mean FA and MD is
 * recomputed here from the stored cluster map and FA/MD maps; the PNG is inflated and its size checked
 * against its IHDR.
 */
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AiRead, AiReadJob, VolumeData } from '../../src/shared/ipc.js';
import { FhirValidator } from '../../src/main/fhir/validation.js';
import { setUpWorkstation, storeReader, tempDir, type StoreReader, type TestConnection, type Workstation } from '../support/harness.js';
import { finishedJob } from '../support/imaging-jobs.js';
import { sharedData, SHARED_DATA } from '../support/shared-data.js';

const SIEMENS = sharedData('dwi-siemens-mosaic', 'In', '4_DWI_SagAPmosaic');
const GE = sharedData('dwi-ge', 'In', '01_Ax_DWI_TENSOR_R2');
const MODEL_DIR = path.resolve('models/lesion-cnn');
const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

let ws: Workstation;
let radiologist: TestConnection;
let physician: TestConnection;
let patientId: string;
let studyId: string;
let read: AiRead;
let job: AiReadJob;

let withStore: StoreReader;

interface Queued {
  operation: string;
  id: string;
  resource: Record<string, unknown> & { resourceType: string };
}
/** The outbox rows of one resource type, oldest first. */
const queued = (type: string): Queued[] =>
  withStore((db) =>
    (db.prepare('SELECT operation, resource_id, resource_json FROM outbox WHERE resource_type = ? ORDER BY id').all(type) as { operation: string; resource_id: string; resource_json: string }[]).map((r) => ({
      operation: r.operation,
      id: r.resource_id,
      resource: JSON.parse(r.resource_json) as Queued['resource'],
    })),
  );
const count = (sql: string, ...args: unknown[]) => withStore((db) => (db.prepare(sql).get(...args) as { n: number }).n);
const audits = (action: string) => withStore((db) => db.prepare('SELECT action, outcome, outcome_detail, patient_id, detail_json FROM audit_log WHERE action = ? ORDER BY seq').all(action) as { action: string; outcome: string; outcome_detail: string | null; patient_id: string | null; detail_json: string | null }[]);

async function importFor(connection: TestConnection, source: string, patient: string | null): Promise<string> {
  const request = patient
    ? { path: source, mask: true, patientId: patient, override: 'anonymised sample series used as this test patient' }
    : { path: source, mask: true, unlinked: true as const };
  const started = await connection.ok('imaging.import', request);
  const done = await finishedJob(connection, started.id, 120_000);
  if (done.state !== 'done' || !done.studyId) throw new Error(`import failed: ${done.error}`);
  return done.studyId;
}

async function finishedRead(connection: TestConnection, jobId: string, timeoutMs = 180_000): Promise<AiReadJob> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const done = connection.events.filter((e) => e.event === 'analysis.job').map((e) => e.payload as AiReadJob).find((j) => j.id === jobId && j.state !== 'running');
    if (done) return done;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`AI read ${jobId} did not finish in ${timeoutMs} ms`);
}

const decode = (v: VolumeData) => {
  const bytes = Buffer.from(v.dataBase64, 'base64');
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
};

beforeAll(async () => {
  ws = await setUpWorkstation({ imaging: { importRoots: [SHARED_DATA] } });
  withStore = await storeReader(ws);
  ({ connection: physician } = await ws.signInAs('physician'));
  patientId = (await physician.ok('patients.create', { givenName: 'Ada', familyName: 'Readtest', birthDate: '1968-05-06', sex: 'female' })).id;
  ({ connection: radiologist } = await ws.signInAs('radiologist'));
  studyId = await importFor(radiologist, SIEMENS, patientId);
  job = await radiologist.ok('analysis.run', { studyId });
  const done = await finishedRead(radiologist, job.id);
  if (done.state !== 'done' || !done.readId) throw new Error(`read failed: ${done.error}`);
  read = (await radiologist.ok('analysis.reads', { studyId })).reads[0]!;
}, 400_000);
afterAll(async () => ws?.app.close());

describe('the AI read of a stored study', () => {
  it('reports progress stage by stage to the window that started it, ending done with the read', () => {
    const events = radiologist.events.filter((e) => e.event === 'analysis.job').map((e) => e.payload as AiReadJob).filter((j) => j.id === job.id);
    const order = [...new Set(events.map((e) => e.stage))];
    expect(order).toEqual(['loading', 'checks', 'backend', 'model', 'fit', 'features', 'pca-kmeans', 'slices', 'cnn', 'findings', 'saving', 'done']);
    const fractions = events.map((e) => e.fraction);
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]!).toBeGreaterThanOrEqual(fractions[i - 1]! - 1e-9);
    expect(events.at(-1)).toMatchObject({ state: 'done', fraction: 1, readId: read.id });
    // Nobody else's window heard of it.
    expect(physician.events.some((e) => e.event === 'analysis.job')).toBe(false);
  });

  it('stores a preliminary read by the shipped model, named by its hash', () => {
    const manifest = JSON.parse(readFileSync(path.join(MODEL_DIR, 'manifest.json'), 'utf8')) as { name: string; version: string };
    const hash = sha(`${sha(readFileSync(path.join(MODEL_DIR, 'model.json')))}:${sha(readFileSync(path.join(MODEL_DIR, 'weights.bin')))}`);
    expect(read).toMatchObject({ studyId, patientId, status: 'preliminary', decision: null, prior: null, model: { name: manifest.name, version: manifest.version, hash } });
    expect(['suspected', 'not-found']).toContain(read.finding);
    expect(read.conclusion).toMatch(/not for clinical diagnosis; a radiologist must confirm/);
    expect(read.backend.name).toBe('wasm');
    expect(read.stages.map((s) => s.name)).toEqual(['checks', 'backend', 'model', 'fit', 'features', 'pca-kmeans', 'slices', 'cnn', 'findings']);
    expect(read.clusters.map((c) => c.cluster)).toEqual([1, 2, 3, 4]);
  });

  it('serves the heat map and cluster map on the study grid; the cluster FA/MD means match the stored maps', async () => {
    const heat = await radiologist.ok('imaging.volume', { studyId, volume: { aiRead: read.id, map: 'heatmap' } });
    const clusters = await radiologist.ok('imaging.volume', { studyId, volume: { aiRead: read.id, map: 'clusters' } });
    const fa = decode(await radiologist.ok('imaging.volume', { studyId, volume: 'fa' }));
    const md = decode(await radiologist.ok('imaging.volume', { studyId, volume: 'md' }));
    const mask = decode(await radiologist.ok('imaging.volume', { studyId, volume: 'mask' }));
    const h = decode(heat);
    const labels = decode(clusters);
    expect(heat.dims).toEqual(clusters.dims);
    expect(h.length).toBe(fa.length);
    let [outOfRange, heatOutsideMask, badLabel, labelOutsideMask] = [0, 0, 0, 0];
    for (let v = 0; v < h.length; v++) {
      if (!(h[v]! >= 0 && h[v]! <= 1)) outOfRange++;
      if (!mask[v] && h[v] !== 0) heatOutsideMask++;
      if (![0, 1, 2, 3, 4].includes(labels[v]!)) badLabel++;
      if (!mask[v] && labels[v] !== 0) labelOutsideMask++;
    }
    expect({ outOfRange, heatOutsideMask, badLabel, labelOutsideMask }).toEqual({ outOfRange: 0, heatOutsideMask: 0, badLabel: 0, labelOutsideMask: 0 });
    for (const c of read.clusters) {
      let n = 0;
      let faSum = 0;
      let mdSum = 0;
      for (let v = 0; v < labels.length; v++) if (labels[v] === c.cluster) [n, faSum, mdSum] = [n + 1, faSum + fa[v]!, mdSum + md[v]!];
      expect(c.voxels).toBe(n);
      expect(c.meanFa).toBeCloseTo(faSum / n, 5);
      expect(c.meanMd).toBeCloseTo(mdSum / n, 9);
    }
    // Clusters are numbered by mean diffusivity (CSF last).
    const mds = read.clusters.map((c) => c.meanMd);
    expect([...mds].sort((a, b) => a - b)).toEqual(mds);
    expect((await radiologist.fail('imaging.volume', { studyId, volume: { aiRead: '00000000-0000-4000-8000-000000000000', map: 'heatmap' } })).code).toBe('not-found');
  });

  it('queues its report as valid FHIR R4: DiagnosticReport (preliminary, AI-labelled) → ImagingStudy, Observations, the heat map PNG', () => {
    const validator = new FhirValidator();
    const [report] = queued('DiagnosticReport').filter((r) => r.id === read.id);
    expect(report).toMatchObject({ operation: 'create', resource: { status: 'preliminary', subject: { reference: `Patient/${patientId}` }, imagingStudy: [{ reference: `ImagingStudy/${studyId}` }] } });
    expect((report!.resource.meta as { security: { code: string }[] }).security.map((s) => s.code)).toContain('AIAST');
    const [study] = queued('ImagingStudy');
    expect(study).toMatchObject({ operation: 'update', id: studyId, resource: { status: 'available', subject: { reference: `Patient/${patientId}` } } });
    const observationIds = (report!.resource.result as { reference: string }[]).map((r) => r.reference.replace('Observation/', ''));
    const observations = queued('Observation').filter((o) => observationIds.includes(o.id));
    // The volume's probability, one per region, one per tissue cluster.
    expect(observations).toHaveLength(1 + read.regions.length + 4);
    const [media] = queued('Media');
    expect((report!.resource.media as { link: { reference: string } }[])[0]!.link.reference).toBe(`Media/${media!.id}`);
    const content = media!.resource.content as { contentType: string; data: string };
    expect(content.contentType).toBe('image/png');
    const png = Buffer.from(content.data, 'base64');
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
    expect([width, height]).toEqual([media!.resource.width, media!.resource.height]);
    // IDAT inflates to one filter byte plus width × 3 bytes per row.
    const idatLength = png.readUInt32BE(33);
    expect(png.subarray(37, 41).toString('ascii')).toBe('IDAT');
    expect(inflateSync(png.subarray(41, 41 + idatLength)).length).toBe((width * 3 + 1) * height);
    for (const row of [report!, study!, ...observations, media!, ...queued('Device')]) expect(validator.validate(row.resource), `${row.resource.resourceType} ${row.id}`).toEqual({ valid: true });
    const [audit] = audits('analysis.complete');
    expect(audit).toMatchObject({ outcome: 'success', patient_id: patientId });
  });

  it('lets a radiologist, and only a radiologist, decide once: confirmed → final, queued and audited', async () => {
    expect((await physician.fail('analysis.decide', { readId: read.id, decision: 'confirm', comment: 'looks right to me' })).code).toBe('forbidden');
    expect((await radiologist.fail('analysis.decide', { readId: read.id, decision: 'amend', comment: 'no conclusion given' })).code).toBe('bad-request');
    const decided = await radiologist.ok('analysis.decide', { readId: read.id, decision: 'confirm', comment: 'agree with the AI read after review' });
    expect(decided).toMatchObject({ status: 'final', decision: { kind: 'confirmed', comment: 'agree with the AI read after review' } });
    const updates = queued('DiagnosticReport').filter((r) => r.id === read.id);
    expect(updates.map((u) => [u.operation, u.resource.status])).toEqual([
      ['create', 'preliminary'],
      ['update', 'final'],
    ]);
    expect(updates[1]!.resource.resultsInterpreter).toEqual([{ display: expect.stringMatching(/\(radiologist\)$/) }]);
    expect(audits('analysis.decide').at(-1)).toMatchObject({ outcome: 'success', patient_id: patientId });
    const outboxBefore = count('SELECT count(*) AS n FROM outbox');
    expect((await radiologist.fail('analysis.decide', { readId: read.id, decision: 'reject', comment: 'changed my mind' })).code).toBe('conflict');
    expect(count('SELECT count(*) AS n FROM outbox')).toBe(outboxBefore);
    expect((await radiologist.ok('analysis.reads', { studyId })).reads[0]!.status).toBe('final');
  });

  it('a second study of the same patient: a new read compares each cluster and region with the first; amending to "suspected" notifies the physicians', async () => {
    ws.clock.advance(2_000); // imported later than the first (the sessions stay active)
    const second = await importFor(radiologist, SIEMENS, patientId);
    const started = await radiologist.ok('analysis.run', { studyId: second });
    const done = await finishedRead(radiologist, started.id);
    expect(done.state).toBe('done');
    const [next] = (await radiologist.ok('analysis.reads', { studyId: second })).reads;
    expect(next!.prior).toMatchObject({ readId: read.id, studyId });
    // The same scan again: every change is zero and every region is found where it was.
    for (const c of next!.clusters) {
      expect(Math.abs(c.prior!.faChange)).toBeLessThan(1e-9);
      expect(Math.abs(c.prior!.mdChange)).toBeLessThan(1e-12);
    }
    for (const r of next!.regions) expect(r.prior).toMatchObject({ distanceMm: 0, faChange: 0, mdChange: 0 });
    const unreadBefore = (await physician.ok('notifications.list', {})).unread;
    const amended = await radiologist.ok('analysis.decide', { readId: next!.id, decision: 'amend', comment: 'small periventricular lesion seen on review', conclusion: 'Small periventricular white-matter lesion, left.', finding: 'suspected' });
    expect(amended).toMatchObject({ status: 'amended', decision: { kind: 'amended', finding: 'suspected', conclusion: 'Small periventricular white-matter lesion, left.' } });
    await new Promise((r) => setTimeout(r, 50));
    const inbox = await physician.ok('notifications.list', {});
    expect(inbox.unread).toBe(unreadBefore + 1);
    expect(inbox.notifications[0]).toMatchObject({ kind: 'ai-read.lesion-confirmed', patientId, subject: { type: 'DiagnosticReport', id: next!.id }, readAt: null });
    expect(inbox.notifications[0]!.body).toMatch(/Small periventricular white-matter lesion/);
    expect(physician.events.some((e) => e.event === 'notifications.changed')).toBe(true);
    const { connection: nurse } = await ws.signInAs('nurse');
    expect((await nurse.ok('notifications.list', {})).notifications).toHaveLength(0);
    expect((await nurse.fail('notifications.markRead', { id: inbox.notifications[0]!.id })).code).toBe('not-found');
    expect((await physician.ok('notifications.markRead', { id: inbox.notifications[0]!.id })).readAt).not.toBeNull();
    // The first read may have been a confirmed suspected lesion too: this one is about the amended read.
    const communication = queued('Communication').find((c) => (c.resource.about as { reference: string }[])[0]!.reference === `DiagnosticReport/${next!.id}`);
    expect(communication!.resource).toMatchObject({ status: 'completed', subject: { reference: `Patient/${patientId}` }, about: [{ reference: `DiagnosticReport/${next!.id}` }] });
    expect(new FhirValidator().validate(communication!.resource)).toEqual({ valid: true });
    expect(queued('DiagnosticReport').filter((r) => r.id === next!.id).at(-1)!.resource).toMatchObject({ status: 'amended', conclusion: expect.stringMatching(/^Small periventricular white-matter lesion, left\./) });
  });

  it('a rejected read is entered-in-error and notifies nobody', async () => {
    const started = await radiologist.ok('analysis.run', { studyId });
    const done = await finishedRead(radiologist, started.id);
    const unread = (await physician.ok('notifications.list', {})).unread;
    const rejected = await radiologist.ok('analysis.decide', { readId: done.readId!, decision: 'reject', comment: 'motion artefact, read not valid' });
    expect(rejected.status).toBe('entered-in-error');
    expect((await physician.ok('notifications.list', {})).unread).toBe(unread);
    expect(queued('Observation').filter((o) => (o.resource.status as string) === 'entered-in-error').length).toBeGreaterThan(0);
  });
});

describe('refusals: a clear reason, nothing written, the app keeps working', () => {
  const reads = () => count('SELECT count(*) AS n FROM ai_reads');
  const aiVolumes = () => count("SELECT count(*) AS n FROM imaging_volumes WHERE key LIKE 'ai:%'");

  it('a study without a patient, a series without diffusion contrast, an unknown study', async () => {
    const [readsBefore, volumesBefore] = [reads(), aiVolumes()];
    const unlinked = await importFor(radiologist, SIEMENS, null);
    expect(await radiologist.fail('analysis.run', { studyId: unlinked })).toMatchObject({ code: 'conflict', message: expect.stringMatching(/link it to the patient first/) });
    const ge = await importFor(radiologist, GE, patientId);
    expect(await radiologist.fail('analysis.run', { studyId: ge })).toMatchObject({ code: 'bad-request', message: expect.stringMatching(/no diffusion contrast|diffusion-weighted volumes/i) });
    expect((await radiologist.fail('analysis.run', { studyId: '00000000-0000-4000-8000-000000000000' })).code).toBe('not-found');
    expect([reads(), aiVolumes()]).toEqual([readsBefore, volumesBefore]);
  });

  it('a cancelled read leaves only its audit entry', async () => {
    const [readsBefore, volumesBefore] = [reads(), aiVolumes()];
    const started = await radiologist.ok('analysis.run', { studyId });
    await new Promise((r) => setTimeout(r, 300));
    await radiologist.ok('analysis.cancel', { jobId: started.id });
    const done = await finishedRead(radiologist, started.id);
    expect(done).toMatchObject({ state: 'cancelled', readId: null });
    expect([reads(), aiVolumes()]).toEqual([readsBefore, volumesBefore]);
    expect(audits('analysis.cancelled').at(-1)).toMatchObject({ outcome: 'success', patient_id: patientId });
  });

  it('a missing or corrupt model: the read is refused with the reason, the study and the rest of the app still work', async () => {
    const missing = await setUpWorkstation({ imaging: { importRoots: [SHARED_DATA] }, analysis: { modelDir: path.join(tempDir('nw-no-model-'), 'lesion-cnn') } });
    const corruptDir = path.join(tempDir('nw-corrupt-model-'), 'lesion-cnn');
    cpSync(MODEL_DIR, corruptDir, { recursive: true });
    const weights = readFileSync(path.join(corruptDir, 'weights.bin'));
    weights[100] = weights[100]! ^ 0xff;
    writeFileSync(path.join(corruptDir, 'weights.bin'), weights);
    const corrupt = await setUpWorkstation({ imaging: { importRoots: [SHARED_DATA] }, analysis: { modelDir: corruptDir } });
    try {
      for (const [station, reason] of [
        [missing, /the AI model is missing/],
        [corrupt, /corrupt or was replaced/],
      ] as const) {
        const { connection: physicianHere } = await station.signInAs('physician');
        const patient = (await physicianHere.ok('patients.create', { givenName: 'No', familyName: 'Model', birthDate: '1970-01-01', sex: 'unknown' })).id;
        const { connection } = await station.signInAs('radiologist');
        const study = await importFor(connection, SIEMENS, patient);
        expect(await connection.fail('analysis.run', { studyId: study })).toMatchObject({ code: 'unavailable', message: expect.stringMatching(reason) });
        const state = await connection.ok('analysis.reads', { studyId: study });
        expect(state).toMatchObject({ reads: [], model: { name: null, error: expect.stringMatching(reason) } });
        expect((await connection.ok('imaging.volume', { studyId: study, volume: 'fa' })).studyId).toBe(study);
      }
    } finally {
      await missing.app.close();
      await corrupt.app.close();
    }
  });

  it("a restricted patient's reads need break-glass, like their images", async () => {
    const restricted = (await physician.ok('patients.create', { givenName: 'Rhea', familyName: 'Restricted', birthDate: '1955-01-01', sex: 'female', restricted: true })).id;
    const study = await importFor(radiologist, SIEMENS, restricted);
    const { connection: other } = await ws.signInAs('radiologist');
    expect((await other.fail('analysis.run', { studyId: study })).code).toBe('forbidden');
    expect((await other.fail('analysis.reads', { studyId: study })).code).toBe('forbidden');
  });
});
