import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../crypto/secrets.ts';

export const RECOVERY_CODE_COUNT = 10;
/** At or below this many unused codes, the person is told to generate new ones. */
export const LOW_RECOVERY_CODES = 3;

/**
 * A recovery code: 80 random bits as 16 base32 characters in four groups (`abcd-efgh-…`), easy to
 * copy by hand. With that much entropy an unsalted SHA-256 is enough to store it (as API keys are).
 */
export function newRecoveryCode(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(16);
  let out = '';
  for (let i = 0; i < 16; i++) out += alphabet[bytes[i]! & 31];
  return out.match(/.{4}/g)!.join('-');
}

/** What a person typed, reduced to the stored form: case, spaces and dashes don't matter. */
export function normalizeRecoveryCode(typed: string): string {
  return typed.toLowerCase().replace(/[\s-]/g, '');
}

export function recoveryCodeHash(typed: string): string {
  return sha256Hex(`recovery:${normalizeRecoveryCode(typed)}`);
}
