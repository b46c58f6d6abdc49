/**
 * The store key: 32 random-looking bytes handed to SQLCipher as a raw key.
 * - From a passphrase through scrypt (headless host, Linux `basic_text`, or when configured).
 * - From Electron's safeStorage: a random key sealed by the OS keychain.
 * A key-check value (HMAC of a constant) tells a wrong passphrase apart from a damaged database
 * without revealing anything about the key.
 */
import { createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fsyncPath } from './durable.js';
import { z } from 'zod';
import { NwError } from '../../shared/errors.js';

export const KEY_BYTES = 32;
/** N=2^17, r=8: about 128 MiB and a few hundred ms per derivation: slow for a guesser, once per start for us. */
export const STORE_SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;

function scrypt(secret: string | Buffer, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(secret, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export function scryptAsync(secret: string | Buffer, salt: Buffer, keylen: number, params: { N: number; r: number; p: number }): Promise<Buffer> {
  return scrypt(secret, salt, keylen, { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 });
}

const keyInfoSchema = z.discriminatedUnion('kdf', [
  z.object({
    format: z.literal(1),
    kdf: z.literal('scrypt'),
    N: z.number().int(),
    r: z.number().int(),
    p: z.number().int(),
    salt: z.string(),
    check: z.string(),
  }),
  z.object({ format: z.literal(1), kdf: z.literal('safe-storage'), sealedKey: z.string(), check: z.string() }),
]);
export type KeyInfo = z.infer<typeof keyInfoSchema>;

export function keyCheck(key: Buffer): string {
  return createHmac('sha256', key).update('neuroward store key check v1').digest('base64');
}

export function keyMatches(key: Buffer, info: KeyInfo): boolean {
  const expected = Buffer.from(info.check, 'base64');
  const actual = Buffer.from(keyCheck(key), 'base64');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export async function newPassphraseKey(passphrase: string): Promise<{ key: Buffer; info: KeyInfo }> {
  const salt = randomBytes(16);
  const key = await scryptAsync(passphrase.normalize('NFC'), salt, KEY_BYTES, STORE_SCRYPT);
  return { key, info: { format: 1, kdf: 'scrypt', ...STORE_SCRYPT, salt: salt.toString('base64'), check: keyCheck(key) } };
}

export async function derivePassphraseKey(passphrase: string, info: KeyInfo): Promise<Buffer> {
  if (info.kdf !== 'scrypt') throw new NwError('store-corrupted', 'this store is sealed by the operating system keychain, not a passphrase');
  const key = await scryptAsync(passphrase.normalize('NFC'), Buffer.from(info.salt, 'base64'), KEY_BYTES, info);
  if (!keyMatches(key, info)) throw new NwError('wrong-passphrase', 'Wrong store passphrase.');
  return key;
}

export function newSealedKey(seal: (plain: Buffer) => Buffer): { key: Buffer; info: KeyInfo } {
  const key = randomBytes(KEY_BYTES);
  return { key, info: { format: 1, kdf: 'safe-storage', sealedKey: seal(key).toString('base64'), check: keyCheck(key) } };
}

export function unsealKey(info: KeyInfo, unseal: (sealed: Buffer) => Buffer): Buffer {
  if (info.kdf !== 'safe-storage') throw new NwError('store-corrupted', 'this store is protected by a passphrase, not the operating system keychain');
  const key = unseal(Buffer.from(info.sealedKey, 'base64'));
  if (!keyMatches(key, info)) throw new NwError('wrong-passphrase', 'The operating system keychain returned a different key for this store.');
  return key;
}

export function readKeyInfo(file: string): KeyInfo | null {
  if (!existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new NwError('store-corrupted', `Store key file ${file} is not valid JSON.`);
  }
  const parsed = keyInfoSchema.safeParse(raw);
  if (!parsed.success) throw new NwError('store-corrupted', `Store key file ${file} is damaged: ${parsed.error.issues[0]?.message ?? 'unreadable'}.`);
  return parsed.data;
}

/** Written to a temporary name and renamed, so a crash never leaves half a key file. */
export function writeKeyInfo(file: string, info: KeyInfo): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  fsyncPath(tmp);
  renameSync(tmp, file);
  fsyncPath(path.dirname(file));
}
