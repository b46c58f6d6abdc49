/**
 * Opening the encrypted SQLite file. SQLCipher page format v3 with 4 KiB pages and a raw 256-bit key:
 * that is exactly what Debian's stock `sqlcipher` shell (3.4) opens, so IT can inspect or recover a store
 * with a standard tool and the key. With a raw key the v3/v4 difference in KDF iterations does not apply.
 */
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3-multiple-ciphers';
import { NwError } from '../../shared/errors.js';

export type Db = Database.Database;
export type Statement = Database.Statement;

/** The pragmas an external shell needs after `PRAGMA key`, for the docs and the tests. */
export const SHELL_PRAGMAS = ['PRAGMA cipher_page_size = 4096;'] as const;

function nativeBindingOption(): Database.Options {
  // The Electron host points this at an addon built for Electron's ABI; Node uses the package's own.
  const binding = process.env.NEUROWARD_SQLITE_NATIVE_BINDING;
  return binding ? { nativeBinding: binding } : {};
}

function sqliteCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;
}

/** The pragmas that make a connection read this store: the cipher, its page format, the raw key. */
export function keyPragmas(key: Buffer): string[] {
  return [`cipher='sqlcipher'`, 'legacy=3', 'legacy_page_size=4096', `key="x'${key.toString('hex')}'"`];
}

/**
 * Opens (or creates) the store file with the key. The key has already been checked against the key
 * file, so a failure to read here means the file itself is damaged.
 */
export function openEncryptedDatabase(file: string, key: Buffer, options: { create: boolean }): Db {
  let db: Db | undefined;
  try {
    ownerOnly(file, options.create);
    db = new Database(file, { fileMustExist: !options.create, ...nativeBindingOption() });
    for (const pragma of keyPragmas(key)) db.pragma(pragma);
    // The first real read decrypts page 1: a damaged or foreign file fails here.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    db.pragma('secure_delete = ON');
    // SQLite gives -wal and -shm the main file's mode when it creates them; tighten any older ones too.
    for (const suffix of ['-wal', '-shm']) if (existsSync(file + suffix)) chmodSync(file + suffix, 0o600);
    return db;
  } catch (error) {
    db?.close();
    const code = sqliteCode(error);
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      throw new NwError('store-corrupted', `The store file ${file} is damaged or is not a NeuroWard store (${code}). It was left untouched; restore it from a backup.`);
    }
    if (code === 'SQLITE_CANTOPEN') throw new NwError('store-corrupted', `The store file ${file} cannot be opened (${code}).`);
    throw error;
  }
}

/**
 * The store and its -wal/-shm files are for this account only (0600), whatever the umask: the file is
 * created with that mode before SQLite opens it, and an existing one is tightened.
 */
function ownerOnly(file: string, create: boolean): void {
  if (process.platform === 'win32') return;
  if (!existsSync(file)) {
    if (!create) return; // SQLite reports the missing file
    closeSync(openSync(file, 'wx', 0o600));
  }
  chmodSync(file, 0o600);
  for (const suffix of ['-wal', '-shm']) if (existsSync(file + suffix)) chmodSync(file + suffix, 0o600);
}

export function integrityCheck(db: Db): string[] {
  const rows = db.pragma('quick_check') as { quick_check: string }[];
  return rows.map((r) => r.quick_check).filter((r) => r !== 'ok');
}
