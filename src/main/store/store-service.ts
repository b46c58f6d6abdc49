/**
 * The encrypted store's life: uninitialized → (setup) → ready, or locked → (passphrase) → ready,
 * or error (damaged file, which is left untouched). Setup builds the whole store under a temporary
 * name and renames it into place, so an interrupted setup leaves nothing half-written.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { AppConfig } from '../app/config.js';
import type { SafeStorageKeyProvider } from '../app/types.js';
import type { PassphraseSource, StoreState } from '../../shared/ipc.js';
import { NwError } from '../../shared/errors.js';
import { openEncryptedDatabase, type Db } from './database.js';
import { WalCheckpointer } from './checkpointer.js';
import { applyMigrations } from './migrations.js';
import { fsyncPath } from './durable.js';
import { derivePassphraseKey, newPassphraseKey, newSealedKey, readKeyInfo, unsealKey, writeKeyInfo, type KeyInfo } from './keys.js';

export const STORE_FILE = 'neuroward.db';
export const KEY_FILE = 'neuroward.keyinfo.json';

const MAX_UNLOCK_FAILURES = 5;
const UNLOCK_BACKOFF_MS = 30_000;

/**
 * The data dir holds the store, its key file and the launch file: this account only (0700). An existing
 * directory open to others is tightened; one this account cannot tighten stops the start.
 */
function ownerOnlyDirectory(dir: string): void {
  if (process.platform === 'win32') return;
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  try {
    chmodSync(dir, mode & 0o700);
  } catch (error) {
    throw new NwError('store-locked', `The data directory ${dir} is open to other users (mode ${mode.toString(8)}) and cannot be tightened to 700: ${(error as Error).message}. Fix its owner or mode.`);
  }
}

export class StoreService {
  readonly dbFile: string;
  readonly keyFile: string;
  readonly passphraseSource: PassphraseSource;
  private stateValue: StoreState = 'uninitialized';
  private errorValue: NwError | null = null;
  private dbValue: Db | null = null;
  private openKey: Buffer | null = null;
  private unlockFailures = 0;
  private unlockBlockedUntil = 0;
  private busy = false;
  private checkpointer: WalCheckpointer | null = null;

  constructor(
    private readonly config: AppConfig,
    private readonly safeStorage: SafeStorageKeyProvider | undefined,
    private readonly now: () => Date,
    /** `backgroundCheckpoints`: checkpoint the WAL from a worker thread (the app; not the short-lived CLI). */
    private readonly options: { backgroundCheckpoints?: boolean; log?: (message: string) => void } = {},
  ) {
    this.dbFile = path.join(config.dataDir, STORE_FILE);
    this.keyFile = path.join(config.dataDir, KEY_FILE);
    this.passphraseSource = this.resolveSource();
  }

  /** `auto` picks the OS keychain only where it is real protection; otherwise a person types a passphrase. */
  private resolveSource(): PassphraseSource {
    const configured = this.config.passphrase.source;
    if (configured === 'safe-storage' && !this.safeStorage?.isProtected()) {
      throw new NwError('store-locked', 'setting "store.passphrase.source" is "safe-storage" but no protected OS keychain is available here (headless host, or Linux basic_text backend). Use "prompt", "env" or "file".');
    }
    if (configured === 'auto') return this.safeStorage?.isProtected() ? 'safe-storage' : 'prompt';
    return configured;
  }

  get state(): StoreState {
    return this.stateValue;
  }
  get error(): NwError | null {
    return this.errorValue;
  }
  get ready(): boolean {
    return this.stateValue === 'ready';
  }

  /** The open database; a clear refusal while the store is not open. */
  get db(): Db {
    if (this.dbValue) return this.dbValue;
    if (this.stateValue === 'uninitialized') throw new NwError('store-uninitialized', 'This workstation is not set up yet.');
    if (this.stateValue === 'error') throw this.errorValue ?? new NwError('store-corrupted', 'The store cannot be opened.');
    throw new NwError('store-locked', 'The store is locked: enter the store passphrase first.');
  }

  /** Opens the store where no person is needed (keychain, env or file passphrase). */
  async start(): Promise<void> {
    try {
      mkdirSync(this.config.dataDir, { recursive: true, mode: 0o700 });
      ownerOnlyDirectory(this.config.dataDir);
      if (!existsSync(this.dbFile)) {
        this.stateValue = 'uninitialized';
        return;
      }
      const info = readKeyInfo(this.keyFile);
      if (!info) throw new NwError('store-corrupted', `The store ${this.dbFile} exists but its key file ${this.keyFile} is missing. Restore both from the same backup.`);
      if (info.kdf === 'safe-storage') {
        if (!this.safeStorage) throw new NwError('store-locked', 'This store is sealed by the desktop keychain: open it with the NeuroWard desktop app.');
        this.open(unsealKey(info, (sealed) => this.safeStorage!.decrypt(sealed)));
        return;
      }
      const passphrase = this.configuredPassphrase();
      if (passphrase === null) {
        this.stateValue = 'locked';
        return;
      }
      this.open(await derivePassphraseKey(passphrase, info));
    } catch (error) {
      this.fail(error);
    }
  }

  /** Passphrase from the environment or a file, or null when a person must type it. */
  private configuredPassphrase(): string | null {
    const { env, file } = this.config.passphrase;
    if (this.passphraseSource === 'env') {
      const value = this.config.passphrase.fromEnv;
      if (!value) throw new NwError('store-locked', `Environment variable ${env} (store passphrase) is empty.`);
      return value;
    }
    if (this.passphraseSource === 'file') {
      if (!file) throw new NwError('store-locked', 'setting "store.passphrase.file" is not set.');
      try {
        const mode = statSync(file).mode & 0o077;
        if (process.platform !== 'win32' && mode !== 0) {
          throw new NwError('store-locked', `Passphrase file ${file} is readable by other users (mode ${(statSync(file).mode & 0o777).toString(8)}); chmod 600 it.`);
        }
        return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (error) {
        if (error instanceof NwError) throw error;
        throw new NwError('store-locked', `Cannot read the passphrase file ${file}: ${(error as Error).message}`);
      }
    }
    return null;
  }

  async unlock(passphrase: string): Promise<void> {
    if (this.stateValue === 'ready') return;
    if (this.stateValue === 'uninitialized') throw new NwError('store-uninitialized', 'This workstation is not set up yet.');
    if (this.stateValue === 'error') throw this.errorValue ?? new NwError('store-corrupted', 'The store cannot be opened.');
    const now = this.now().getTime();
    if (now < this.unlockBlockedUntil) {
      throw new NwError('rate-limited', `Too many wrong passphrases. Try again in ${Math.ceil((this.unlockBlockedUntil - now) / 1000)} s.`);
    }
    if (this.busy) throw new NwError('rate-limited', 'An unlock is already in progress.');
    this.busy = true;
    try {
      const info = readKeyInfo(this.keyFile);
      if (!info) throw new NwError('store-corrupted', `The key file ${this.keyFile} is missing.`);
      let key: Buffer;
      try {
        key = await derivePassphraseKey(passphrase, info);
      } catch (error) {
        if (error instanceof NwError && error.code === 'wrong-passphrase') {
          this.unlockFailures += 1;
          if (this.unlockFailures >= MAX_UNLOCK_FAILURES) {
            this.unlockFailures = 0;
            this.unlockBlockedUntil = this.now().getTime() + UNLOCK_BACKOFF_MS;
          }
        }
        throw error;
      }
      this.unlockFailures = 0;
      try {
        this.open(key);
      } catch (error) {
        this.fail(error);
        throw error;
      }
    } finally {
      this.busy = false;
    }
  }

  /**
   * Creates the store. `populate` runs inside the first transaction (admin account, demo data,
   * the first audit entries); if anything throws, no store file appears.
   */
  async initialize(promptPassphrase: string | undefined, populate: (db: Db) => void): Promise<void> {
    if (this.stateValue !== 'uninitialized') throw new NwError('conflict', 'This workstation is already set up.');
    if (this.busy) throw new NwError('rate-limited', 'Setup is already in progress.');
    if (this.passphraseSource === 'prompt' && !promptPassphrase) throw new NwError('bad-request', 'Choose a store passphrase.', [{ path: 'storePassphrase', message: 'required' }]);
    if (this.passphraseSource !== 'prompt' && promptPassphrase) {
      throw new NwError('bad-request', `The store passphrase comes from ${this.passphraseSource}; do not send one.`, [{ path: 'storePassphrase', message: 'not expected' }]);
    }
    this.busy = true;
    const tmpFile = `${this.dbFile}.initializing`;
    try {
      let created: { key: Buffer; info: KeyInfo };
      if (this.passphraseSource === 'safe-storage') created = newSealedKey((plain) => this.safeStorage!.encrypt(plain));
      else created = await newPassphraseKey(promptPassphrase ?? this.configuredPassphrase()!);
      for (const suffix of ['', '-wal', '-shm']) rmSync(tmpFile + suffix, { force: true });
      const db = openEncryptedDatabase(tmpFile, created.key, { create: true });
      try {
        applyMigrations(db, () => this.now().toISOString());
        db.transaction(() => populate(db))();
        db.pragma('wal_checkpoint(TRUNCATE)');
      } finally {
        db.close();
      }
      fsyncPath(tmpFile);
      writeKeyInfo(this.keyFile, created.info);
      renameSync(tmpFile, this.dbFile);
      // The rename is what makes the store exist: flush the directory so a power cut cannot undo it.
      fsyncPath(this.config.dataDir);
      this.open(created.key);
    } catch (error) {
      for (const suffix of ['', '-wal', '-shm']) rmSync(tmpFile + suffix, { force: true });
      throw error;
    } finally {
      this.busy = false;
    }
  }

  /** The raw key of the open store, for `neuroward store key` only (IT recovery with the sqlcipher shell). */
  rawKeyForRecovery(): Buffer {
    if (!this.openKey) throw new NwError('store-locked', 'The store is not open.');
    return Buffer.from(this.openKey);
  }

  private open(key: Buffer): void {
    const db = openEncryptedDatabase(this.dbFile, key, { create: false });
    try {
      applyMigrations(db, () => this.now().toISOString());
    } catch (error) {
      db.close();
      throw error;
    }
    this.dbValue = db;
    this.openKey = key;
    if (this.options.backgroundCheckpoints) this.checkpointer = WalCheckpointer.start(db, this.dbFile, key, this.options.log ? { log: this.options.log } : {});
    this.stateValue = 'ready';
    this.errorValue = null;
  }

  private fail(error: unknown): void {
    if (error instanceof NwError && error.code === 'wrong-passphrase') {
      this.stateValue = 'error';
      this.errorValue = new NwError('wrong-passphrase', `The configured store passphrase (${this.passphraseSource}) does not open ${this.dbFile}.`);
      return;
    }
    this.stateValue = 'error';
    this.errorValue = error instanceof NwError ? error : new NwError('store-corrupted', `The store cannot be opened: ${(error as Error).message}`);
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    this.checkpointer?.stop();
    this.checkpointer = null;
    if (this.dbValue?.open) {
      this.dbValue.pragma('wal_checkpoint(TRUNCATE)');
      this.dbValue.close();
    }
    this.dbValue = null;
    this.openKey?.fill(0);
    this.openKey = null;
    if (this.stateValue === 'ready') this.stateValue = 'locked';
  }
}
