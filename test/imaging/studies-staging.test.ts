/**
 * A study is written in chunks (imaging-service.ts): its row first, not complete, then its volumes in
 * several transactions, then completed with its patient. Until then it is nowhere to be seen, and what
 * an interrupted import left is removed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openEncryptedDatabase, type Db } from '../../src/main/store/database.js';
import { applyMigrations } from '../../src/main/store/migrations.js';
import { StudiesRepository } from '../../src/main/imaging/studies-repo.js';
import type { DwiSeries, TensorMaps } from '../../src/main/imaging/types.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nw-staging-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openDb(): Db {
  const db = openEncryptedDatabase(path.join(dir, `${randomBytes(4).toString('hex')}.db`), randomBytes(32), { create: true });
  applyMigrations(db, () => new Date().toISOString());
  return db;
}

/** 4×4×2 voxels, 3 volumes: values that say where they came from. */
function fixture(): { series: DwiSeries; maps: TensorMaps } {
  const nvox = 32;
  const data = Float32Array.from({ length: nvox * 3 }, (_, i) => i);
  const affine: DwiSeries['affine'] = [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]];
  const series: DwiSeries = { dims: [4, 4, 2, 3], data, pixdim: [2, 2, 2], affine, bvals: [0, 1000, 1000], bvecs: [[0, 0, 0], [1, 0, 0], [0, 1, 0]], source: { kind: 'dicom', files: ['a.dcm'] } };
  const map = (v: number) => new Float32Array(nvox).fill(v);
  const maps: TensorMaps = { dims: [4, 4, 2], pixdim: [2, 2, 2], affine, mask: new Uint8Array(nvox).fill(1), fa: map(0.5), md: map(0.0008), ad: map(0.001), rd: map(0.0007), v1: new Float32Array(nvox * 3).fill(1), colourFa: new Float32Array(nvox * 3).fill(0.5) };
  return { series, maps };
}

const input = (f: ReturnType<typeof fixture>) => ({ ...f, createdBy: 'rad', description: 'staged', sourcePath: '/in/staged', masked: false, fitSeconds: 0.1 });
const volumeRows = (db: Db) => (db.prepare('SELECT count(*) AS n FROM imaging_volumes').get() as { n: number }).n;

describe('a study written in chunks', () => {
  it('splits maps and DWI volumes into chunks of about the size asked, maps first', () => {
    const { series, maps } = fixture();
    // 128 bytes per scalar volume, 384 per vector map: a 300-byte budget.
    const chunks = StudiesRepository.volumeChunks(series, maps, 300);
    expect(chunks.flat().map((v) => v.key)).toEqual(['fa', 'md', 'ad', 'rd', 'v1', 'colour-fa', 'mask', 'dwi:0', 'dwi:1', 'dwi:2']);
    expect(chunks.map((c) => c.map((v) => v.key))).toEqual([['fa', 'md'], ['ad', 'rd'], ['v1'], ['colour-fa'], ['mask', 'dwi:0'], ['dwi:1', 'dwi:2']]);
    expect(Array.from(chunks[5]![1]!.values)).toEqual(Array.from({ length: 32 }, (_, i) => 64 + i));
  });

  it('is invisible until complete, then complete with its patient and every volume', () => {
    const db = openDb();
    const repo = new StudiesRepository(db, () => new Date());
    const f = fixture();
    const id = db.transaction(() => repo.insertPending(input(f)))();
    const chunks = StudiesRepository.volumeChunks(f.series, f.maps, 300);
    for (const chunk of chunks.slice(0, 3)) db.transaction(() => repo.putVolumes(id, chunk))();
    expect(repo.get(id)).toBeNull();
    expect(repo.list()).toEqual([]);
    expect(() => repo.volume(id, 'fa')).toThrow(/No such study/);
    for (const chunk of chunks.slice(3)) db.transaction(() => repo.putVolumes(id, chunk))();
    const study = db.transaction(() => repo.complete(id, null, null))();
    expect(study).toMatchObject({ id, description: 'staged', dims: [4, 4, 2, 3] });
    expect(repo.list().map((s) => s.id)).toEqual([id]);
    const dwi2 = repo.volume(id, 'dwi:2');
    expect(Array.from(new Float32Array(new Uint8Array(Buffer.from(dwi2.dataBase64, 'base64')).buffer))).toEqual(Array.from({ length: 32 }, (_, i) => 64 + i));
    expect(() => db.transaction(() => repo.complete(id, null, null))()).toThrow(/not pending/);
    db.close();
  });

  it('leaves nothing of a failed or interrupted import', () => {
    const db = openDb();
    const repo = new StudiesRepository(db, () => new Date());
    const f = fixture();
    const failed = db.transaction(() => repo.insertPending(input(f)))();
    db.transaction(() => repo.putVolumes(failed, StudiesRepository.volumeChunks(f.series, f.maps, 300)[0]!))();
    // A volume the store cannot write fails its chunk's transaction, and nothing of that chunk is written.
    expect(() => db.transaction(() => repo.putVolumes(failed, [{ key: 'fa2', components: 1, values: f.maps.fa }, { key: 'broken', components: 1, values: undefined as unknown as Float32Array }]))()).toThrow(/broken has no voxels/);
    expect(volumeRows(db)).toBe(2);
    db.transaction(() => repo.discard(failed))();
    expect(volumeRows(db)).toBe(0);
    // Interrupted (the process died): its rows stay invisible until the next import removes them.
    const interrupted = db.transaction(() => repo.insertPending(input(f)))();
    db.transaction(() => repo.putVolumes(interrupted, StudiesRepository.volumeChunks(f.series, f.maps, 300)[0]!))();
    const done = db.transaction(() => repo.insertPending(input(f)))();
    db.transaction(() => repo.complete(done, null, null))();
    expect(db.transaction(() => repo.discardAllPending())()).toBe(1);
    expect(repo.list().map((s) => s.id)).toEqual([done]);
    expect((db.prepare('SELECT count(*) AS n FROM imaging_studies').get() as { n: number }).n).toBe(1);
    expect(volumeRows(db)).toBe(0);
    db.close();
  });
});
