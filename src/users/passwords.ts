import pLimit from 'p-limit';
import argon2 from './argon2.ts';

/** OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. */
export const ARGON2_PARAMS = { type: argon2.argon2id, memoryCost: 19 * 1024, timeCost: 2, parallelism: 1 } as const;

/**
 * argon2 runs on libuv's thread pool, which token signing (WebCrypto) and fs share. Two hashes at
 * a time leave the rest of the pool to everything else; a login burst queues here instead.
 */
const hashSlots = pLimit(2);

export function hashPassword(password: string): Promise<string> {
  return hashSlots(() => argon2.hash(password, ARGON2_PARAMS));
}

let dummyHash: Promise<string> | undefined;

export interface PasswordCheck {
  ok: boolean;
  /** A fresh hash to store when the stored one used older parameters. */
  rehashed?: string;
}

/**
 * Verifies `password` against `storedHash`. With no stored hash (unknown user, or a user without
 * a password) it verifies against a dummy hash and fails, so timing does not reveal which.
 */
export async function checkPassword(storedHash: string | null | undefined, password: string): Promise<PasswordCheck> {
  if (!storedHash) {
    dummyHash ??= hashPassword('tessera-dummy-password-for-constant-timing');
    await hashSlots(async () => argon2.verify(await dummyHash!, password)).catch(() => false);
    return { ok: false };
  }
  let ok = false;
  try {
    ok = await hashSlots(() => argon2.verify(storedHash, password));
  } catch {
    ok = false; // a malformed stored hash is a failed sign-in, not a 500
  }
  if (!ok) return { ok };
  if (argon2.needsRehash(storedHash, ARGON2_PARAMS)) return { ok, rehashed: await hashPassword(password) };
  return { ok };
}
