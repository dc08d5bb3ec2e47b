import { dictionary } from '@zxcvbn-ts/language-common';

/**
 * NIST SP 800-63B: at least 8 characters, no composition rules, and not a known-breached or
 * common password. The list (~49,000 passwords from breach corpora) ships with zxcvbn-ts.
 */
export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 256;

const COMMON = new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));

/** Why this password is refused, in words a person can act on; undefined when it is fine. */
export function passwordProblem(password: string, context: { email?: string | undefined } = {}): string | undefined {
  if ([...password].length < MIN_PASSWORD_LENGTH) return `must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > MAX_PASSWORD_LENGTH) return `must be at most ${MAX_PASSWORD_LENGTH} characters`;
  const lower = password.toLowerCase();
  if (COMMON.has(lower)) return 'is one of the most common passwords; choose one that is harder to guess';
  if (context.email) {
    const email = context.email.toLowerCase();
    if (lower === email || lower === email.split('@')[0]) return 'must not be your email address';
  }
  return undefined;
}
