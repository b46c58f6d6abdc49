/**
 * Password hashing with scrypt (node:crypto). Format: `scrypt$N$r$p$salt$hash` (base64), so the
 * cost can be raised later and old hashes still verify. Runs on libuv's thread pool, never blocking
 * the main thread.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { scryptAsync } from '../store/keys.js';

/** N=2^15, r=8: 32 MiB and tens of ms per attempt. */
const PASSWORD_SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;
const HASH_BYTES = 32;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password.normalize('NFC'), salt, HASH_BYTES, PASSWORD_SCRYPT);
  const { N, r, p } = PASSWORD_SCRYPT;
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  const actual = await scryptAsync(password.normalize('NFC'), salt, expected.length, { N, r, p });
  return timingSafeEqual(actual, expected);
}

/**
 * A hash of nothing anyone knows, verified against when the username does not exist, so that
 * "no such user" and "wrong password" take the same time.
 */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(24).toString('base64'));
  return decoy;
}

/** A random password for demo and reset accounts: 16 characters from an unambiguous alphabet. */
export function randomPassword(length = 16): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(length * 2);
  let out = '';
  for (const byte of bytes) {
    // Rejection sampling keeps every character equally likely.
    if (byte < 256 - (256 % alphabet.length)) out += alphabet[byte % alphabet.length];
    if (out.length === length) break;
  }
  return out;
}
