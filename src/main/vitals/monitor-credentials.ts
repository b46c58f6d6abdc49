/**
 * Bedside monitor credentials for the embedded MQTT broker (broker.ts), kept in the encrypted store
 * (migration 6). An administrator creates one per monitor (Admin → Monitors, channel
 * `monitors.create`); each is bound to exactly one bed topic `ward/<ward>/bed/<bed>/vitals`, the only
 * topic that monitor may publish to. The password is 192 random bits, returned once and stored only as
 * its SHA-256: a random secret of that size needs no slow hash (there is no dictionary to try), and the
 * comparison is constant-time. A revoked credential is kept for the record and never authenticates
 * again; the broker also closes its live connections (WardService.monitorRevoked).
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Db } from '../store/database.js';
import type { MonitorCredential, MonitorCredentialsFile } from '../../shared/ipc.js';
import { NwError } from '../../shared/errors.js';
import { VITALS_TOPIC } from './payload.js';

/** Every monitor's user name starts so; nothing else does (the workstation's own account is `nw-workstation`). */
export const MONITOR_USERNAME_PREFIX = 'mon-';
const PASSWORD_BYTES = 24;

interface CredentialRow {
  id: string;
  username: string;
  ward: string;
  bed: string;
  topic: string;
  label: string | null;
  secret_sha256: string;
  created_at: string;
  created_by: string;
  revoked_at: string | null;
  revoked_by: string | null;
  last_connected_at: string | null;
}

/** What the broker needs to know about a monitor that has just authenticated. */
export interface AuthenticatedMonitor {
  id: string;
  username: string;
  topic: string;
}

export type StoredMonitorCredential = Omit<MonitorCredential, 'connected'>;

export function monitorTopic(ward: string, bed: string): string {
  const topic = `ward/${ward}/bed/${bed}/vitals`;
  if (!VITALS_TOPIC.test(topic)) throw new NwError('bad-request', `Ward and bed names take letters, digits, _ and - only (at most 32): ${JSON.stringify(`${ward}/${bed}`)}.`);
  return topic;
}

function sha256(secret: Buffer | string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** Compared against when the user name is unknown or revoked, so that the answer takes as long. */
const DECOY_DIGEST = sha256(randomBytes(32));

function toCredential(row: CredentialRow): StoredMonitorCredential {
  return {
    id: row.id,
    username: row.username,
    ward: row.ward,
    bed: row.bed,
    topic: row.topic,
    label: row.label,
    createdAt: row.created_at,
    createdBy: row.created_by,
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
    lastConnectedAt: row.last_connected_at,
  };
}

export class MonitorCredentialsRepo {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  /** Active first, then by ward, bed and creation. */
  list(): StoredMonitorCredential[] {
    const rows = this.db
      .prepare('SELECT * FROM vitals_monitor_credentials ORDER BY revoked_at IS NOT NULL, ward, length(bed), bed, created_at')
      .all() as CredentialRow[];
    return rows.map(toCredential);
  }

  get(id: string): StoredMonitorCredential | null {
    const row = this.db.prepare('SELECT * FROM vitals_monitor_credentials WHERE id = ?').get(id) as CredentialRow | undefined;
    return row ? toCredential(row) : null;
  }

  /**
   * One credential per bed of `ward`, each with a fresh random password, returned here and never again.
   * A bed may hold more than one active credential (a replacement monitor); revoke the old one.
   */
  create(input: { ward: string; beds: readonly string[]; label?: string | null; createdBy: string }): { credentials: StoredMonitorCredential[]; secrets: MonitorCredentialsFile['monitors'] } {
    const at = this.now().toISOString();
    const insert = this.db.prepare(
      `INSERT INTO vitals_monitor_credentials (id, username, ward, bed, topic, label, secret_sha256, created_at, created_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const credentials: StoredMonitorCredential[] = [];
    const secrets: MonitorCredentialsFile['monitors'] = [];
    for (const bed of input.beds) {
      const topic = monitorTopic(input.ward, bed);
      const id = randomUUID();
      // Readable in a monitor's settings screen; the random tail keeps a replacement's name unique.
      const username = `${MONITOR_USERNAME_PREFIX}${input.ward}-${bed}-${randomBytes(3).toString('hex')}`;
      const password = randomBytes(PASSWORD_BYTES).toString('base64url');
      insert.run(id, username, input.ward, bed, topic, input.label ?? null, sha256(password).toString('hex'), at, input.createdBy);
      credentials.push(toCredential(this.db.prepare('SELECT * FROM vitals_monitor_credentials WHERE id = ?').get(id) as CredentialRow));
      secrets.push({ ward: input.ward, bed, topic, username, password });
    }
    return { credentials, secrets };
  }

  /** Revokes an active credential; a second revoke is a conflict. */
  revoke(id: string, by: string): StoredMonitorCredential {
    const before = this.get(id);
    if (!before) throw new NwError('not-found', 'No such monitor credential.');
    if (before.revokedAt) throw new NwError('conflict', `The credential ${before.username} was already revoked on ${before.revokedAt}.`);
    this.db.prepare('UPDATE vitals_monitor_credentials SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL').run(this.now().toISOString(), by, id);
    return this.get(id)!;
  }

  /**
   * The active credential `username` when `password` is its password, else null. Constant-time in the
   * password, and as slow for an unknown or revoked user name as for a known one.
   */
  verify(username: string, password: Buffer | string): AuthenticatedMonitor | null {
    const row = username.startsWith(MONITOR_USERNAME_PREFIX)
      ? (this.db.prepare('SELECT id, username, topic, secret_sha256, revoked_at FROM vitals_monitor_credentials WHERE username = ?').get(username) as
          | Pick<CredentialRow, 'id' | 'username' | 'topic' | 'secret_sha256' | 'revoked_at'>
          | undefined)
      : undefined;
    const stored = row && row.revoked_at === null ? Buffer.from(row.secret_sha256, 'hex') : DECOY_DIGEST;
    const given = sha256(password);
    const same = stored.length === given.length && timingSafeEqual(stored, given);
    if (!row || row.revoked_at !== null || !same) return null;
    return { id: row.id, username: row.username, topic: row.topic };
  }

  /** Still active (not revoked, not deleted)? */
  isActive(id: string): boolean {
    const row = this.db.prepare('SELECT revoked_at FROM vitals_monitor_credentials WHERE id = ?').get(id) as { revoked_at: string | null } | undefined;
    return row !== undefined && row.revoked_at === null;
  }

  noteConnected(id: string): void {
    this.db.prepare('UPDATE vitals_monitor_credentials SET last_connected_at = ? WHERE id = ?').run(this.now().toISOString(), id);
  }
}
