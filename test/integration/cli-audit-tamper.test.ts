/**
 * `neuroward audit verify` (the built CLI) against a store tampered with by Debian's `sqlcipher`
 * shell, a tool that is not ours, opened with the key that `neuroward store key` prints. It names
 * every problem, so an edit never hides a later deletion (security finding 2 of issue 7).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/main/app/app.js';
import type { AuditVerifyResult } from '../../src/shared/ipc.js';
import { ADMIN, connect, testConfig } from '../support/harness.js';

const CLI = path.resolve('dist/cli/neuroward.js');
const PASSPHRASE = 'cli tamper test passphrase';
let dataDir: string;
const env = () => ({ ...process.env, NEUROWARD_DATA_DIR: dataDir, NEUROWARD_PASSPHRASE_SOURCE: 'env', NEUROWARD_STORE_PASSPHRASE: PASSPHRASE });
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env: env(), encoding: 'utf8' });

function sqlcipher(sql: string): string {
  const pragmas = cli('store', 'key');
  expect(pragmas.status, pragmas.stderr).toBe(0);
  return execFileSync('sqlcipher', [path.join(dataDir, 'neuroward.db')], { input: `${pragmas.stdout}${sql}\n`, encoding: 'utf8' });
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
  if (spawnSync('sqlcipher', ['-version']).error) throw new Error('Debian\'s `sqlcipher` shell is not installed: `apt-get install -y sqlcipher` (.ci/run does).');
  const config = testConfig({}, { NEUROWARD_PASSPHRASE_SOURCE: 'env', NEUROWARD_STORE_PASSPHRASE: PASSPHRASE });
  dataDir = config.dataDir;
  const app = await createApp({ config, host: 'headless', log: () => undefined, announce: () => undefined });
  const c = connect(app);
  await c.ok('setup.initialize', { admin: ADMIN, demoData: true });
  await c.ok('auth.signIn', { username: ADMIN.username, password: ADMIN.password });
  await c.ok('audit.verify', {});
  await app.close();
});

describe('neuroward audit verify with the sqlcipher shell', () => {
  it('passes on an untouched store and fails, naming the entry, after an edit in the shell', () => {
    const before = cli('audit', 'verify');
    expect(before.status, before.stderr).toBe(0);
    expect(before.stdout).toMatch(/^audit chain intact: \d+ entries, head #\d+ [0-9a-f]{64}/);

    // The shell reads the encrypted store with the key, and is stopped by the append-only guard at first.
    expect(sqlcipher('SELECT count(*) FROM audit_log;').trim()).toMatch(/^\d+$/);
    const refused = spawnSync('sqlcipher', [path.join(dataDir, 'neuroward.db')], {
      input: `${cli('store', 'key').stdout}UPDATE audit_log SET outcome_detail = 'x' WHERE seq = 5;\n`,
      encoding: 'utf8',
    });
    expect(refused.stderr).toContain('append-only');

    sqlcipher(`DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor_username = 'someone.else' WHERE seq = 5;`);
    const after = cli('audit', 'verify');
    expect(after.status).toBe(1);
    expect(after.stdout).toMatch(/^audit chain BROKEN: 2 problems found checking \d+ entries/);
    expect(after.stdout).toMatch(/^- edited at entry #5: Entry #5 \(.+\) was edited: its content no longer matches its hash\.$/m);
    expect(after.stdout).toMatch(/^- guard-removed \(schema\): The append-only guard was removed \(audit_log_no_update\)/m);

    const json = JSON.parse(cli('audit', 'verify', '--json').stdout) as AuditVerifyResult;
    expect(json).toMatchObject({ ok: false, problem: { seq: 5, kind: 'edited' } });
    expect(json.problems.map((p) => `${p.kind}@${p.seq}`)).toEqual(['edited@5', 'guard-removed@0']);
  });

  it('names a later deletion together with the earlier edit, and every other problem', () => {
    sqlcipher(`DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq IN (8, 9);`);
    const result = cli('audit', 'verify');
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^audit chain BROKEN: 3 problems found/);
    const lines = result.stdout.split('\n').filter((line) => line.startsWith('- '));
    expect(lines).toEqual([
      expect.stringMatching(/^- edited at entry #5: Entry #5 \(.+\) was edited/),
      '- deleted at entry #8: Entries #8–#9 were deleted: entry #10 points to an entry that no longer exists.',
      expect.stringMatching(/^- guard-removed \(schema\): The append-only guard was removed \(audit_log_no_update, audit_log_no_delete\)/),
    ]);

    const json = JSON.parse(cli('audit', 'verify', '--json').stdout) as AuditVerifyResult;
    expect(json.problems.map((p) => `${p.kind}@${p.seq}`)).toEqual(['edited@5', 'deleted@8', 'guard-removed@0']);
    expect(json).toMatchObject({ ok: false, unlisted: 0, problem: json.problems[0] });
  });

  it('names entries cut off the end as well', () => {
    const last = Number(sqlcipher('SELECT max(seq) FROM audit_log;').trim());
    sqlcipher(`DELETE FROM audit_log WHERE seq >= ${last - 1};`);
    const json = JSON.parse(cli('audit', 'verify', '--json').stdout) as AuditVerifyResult;
    expect(json.problems.map((p) => `${p.kind}@${p.seq}`)).toEqual(['edited@5', 'deleted@8', `truncated@${last - 1}`, 'guard-removed@0']);
  });

  it('exports the ledger as FHIR AuditEvent resources', () => {
    const result = cli('audit', 'export', '--since', '1');
    expect(result.status, result.stderr).toBe(0);
    const events = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { resourceType: string; recorded: string; agent: unknown[]; outcome: string });
    expect(events.length).toBeGreaterThan(10);
    for (const event of events) expect(event).toMatchObject({ resourceType: 'AuditEvent', outcome: expect.stringMatching(/^(0|4|8)$/) });
  });

  it('takes NEUROWARD_STORE_PASSPHRASE alone as the choice of source (no NEUROWARD_PASSPHRASE_SOURCE needed)', () => {
    const { NEUROWARD_PASSPHRASE_SOURCE: _source, ...rest } = env();
    const result = spawnSync(process.execPath, [CLI, 'audit', 'verify', '--json'], { env: rest, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(result.stderr).not.toContain('set NEUROWARD_STORE_PASSPHRASE');
    expect(result.stdout).toContain('"entries"');
  });

  it('explains a locked store without a terminal, and bad usage, with exit code 2', () => {
    const locked = spawnSync(process.execPath, [CLI, 'audit', 'verify'], { env: { ...process.env, NEUROWARD_DATA_DIR: dataDir, NEUROWARD_STORE_PASSPHRASE: '' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(locked.status).toBe(2);
    expect(locked.stderr).toContain('NEUROWARD_STORE_PASSPHRASE');
    const usage = cli('audit', 'frobnicate');
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('unknown command');
    const badConfig = spawnSync(process.execPath, [CLI, 'audit', 'verify'], { env: { ...env(), NEUROWARD_IDLE_LOCK_MINUTES: 'soon' }, encoding: 'utf8' });
    expect(badConfig.status).toBe(2);
    expect(badConfig.stderr).toContain('setting "security.idleLockMinutes" (from environment variable NEUROWARD_IDLE_LOCK_MINUTES)');
  });
});
