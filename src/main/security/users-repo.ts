/** Staff accounts. Password hashes never leave this module. */
import { randomUUID } from 'node:crypto';
import type { Db } from '../store/database.js';
import type { User } from '../../shared/ipc.js';
import type { Role } from '../../shared/roles.js';
import { NwError } from '../../shared/errors.js';

interface UserRow {
  id: string;
  username: string;
  display_name: string;
  role: Role;
  password_hash: string;
  disabled: number;
  synthetic: number;
  failed_sign_ins: number;
  locked_until: string | null;
  must_change_password: number;
  created_at: string;
  updated_at: string;
}

export interface UserWithHash extends User {
  passwordHash: string;
}

function toUser(row: UserRow): UserWithHash {
  return {
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    role: row.role,
    disabled: row.disabled === 1,
    synthetic: row.synthetic === 1,
    lockedUntil: row.locked_until,
    failedSignIns: row.failed_sign_ins,
    mustChangePassword: row.must_change_password === 1,
    createdAt: row.created_at,
    passwordHash: row.password_hash,
  };
}

/** Drops the hash: what may cross the IPC border. */
export function publicUser(user: UserWithHash): User {
  const { passwordHash: _hash, ...rest } = user;
  return rest;
}

export class UsersRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
  }

  byUsername(username: string): UserWithHash | null {
    const row = this.db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  byId(id: string): UserWithHash | null {
    const row = this.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  require(id: string): UserWithHash {
    const user = this.byId(id);
    if (!user) throw new NwError('not-found', 'No such user.');
    return user;
  }

  list(): UserWithHash[] {
    return (this.db.prepare('SELECT * FROM users ORDER BY role, username').all() as UserRow[]).map(toUser);
  }

  create(input: { username: string; displayName: string; role: Role; passwordHash: string; synthetic?: boolean; mustChangePassword?: boolean }): UserWithHash {
    if (this.byUsername(input.username)) throw new NwError('conflict', `The username "${input.username}" is taken.`);
    const at = this.now().toISOString();
    const id = randomUUID();
    this.db
      .prepare(
        `INSERT INTO users (id, username, display_name, role, password_hash, synthetic, must_change_password, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, input.username, input.displayName, input.role, input.passwordHash, input.synthetic ? 1 : 0, input.mustChangePassword ? 1 : 0, at, at);
    return this.require(id);
  }

  update(id: string, changes: { displayName?: string | undefined; role?: Role | undefined; disabled?: boolean | undefined }): UserWithHash {
    const user = this.require(id);
    this.db
      .prepare('UPDATE users SET display_name = ?, role = ?, disabled = ?, updated_at = ? WHERE id = ?')
      .run(changes.displayName ?? user.displayName, changes.role ?? user.role, (changes.disabled ?? user.disabled) ? 1 : 0, this.now().toISOString(), id);
    return this.require(id);
  }

  setPassword(id: string, passwordHash: string, mustChange: boolean): UserWithHash {
    this.db
      .prepare('UPDATE users SET password_hash = ?, must_change_password = ?, failed_sign_ins = 0, locked_until = NULL, updated_at = ? WHERE id = ?')
      .run(passwordHash, mustChange ? 1 : 0, this.now().toISOString(), id);
    return this.require(id);
  }

  recordFailedSignIn(id: string, maxFailures: number, lockoutMs: number): UserWithHash {
    const user = this.require(id);
    const failures = user.failedSignIns + 1;
    const lockedUntil = failures >= maxFailures ? new Date(this.now().getTime() + lockoutMs).toISOString() : user.lockedUntil;
    this.db.prepare('UPDATE users SET failed_sign_ins = ?, locked_until = ?, updated_at = ? WHERE id = ?').run(failures >= maxFailures ? 0 : failures, lockedUntil, this.now().toISOString(), id);
    return this.require(id);
  }

  clearFailures(id: string): UserWithHash {
    this.db.prepare('UPDATE users SET failed_sign_ins = 0, locked_until = NULL, updated_at = ? WHERE id = ?').run(this.now().toISOString(), id);
    return this.require(id);
  }

  countActiveAdmins(): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM users WHERE role = 'admin' AND disabled = 0`).get() as { n: number }).n;
  }
}
