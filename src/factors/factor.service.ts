import { randomUUID } from 'node:crypto';
import { NotFound } from '../base/errors.ts';
import { constantTimeEqual, decrypt, encrypt } from '../crypto/secrets.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { scopedStatement } from '../db/one-shot.ts';
import { inTenant } from '../db/tenant-scope.ts';
import * as repo from './factor.repo.ts';
import type { FactorKind } from './factor.table.ts';
import { newRecoveryCode, RECOVERY_CODE_COUNT, recoveryCodeHash } from './recovery-codes.ts';
import { matchingStep, newTotpKey, otpauthUri } from './totp.ts';

export interface FactorServiceDeps {
  db: Database;
  encryptionKey: Buffer;
  /** Seconds since the epoch; tests move it to another time step. */
  now?: () => number;
}

export interface TotpEnrollment {
  factorId: string;
  /** base32, for typing into an app by hand. */
  secret: string;
  uri: string;
}

/** A second factor's check: which kind answered, or that none did. */
export type SecondFactorResult = { ok: true; method: 'totp' | 'recovery_code' } | { ok: false };

export const TOTP_NAME_MAX = 64;

/**
 * A person's second factors: TOTP (RFC 6238, replay-guarded) and recovery codes. Every check
 * runs in one transaction that locks what it reads, so a code is spent by one request only.
 */
export class FactorService {
  private readonly now: () => number;
  constructor(private readonly deps: FactorServiceDeps) {
    this.now = deps.now ?? (() => Date.now() / 1000);
  }

  list(tenantId: string, userId: string) {
    return inTenant(this.deps.db, tenantId, (tx) => repo.listFactors(tx, tenantId, userId));
  }

  /** Whether sign-in must ask for a second factor. */
  hasConfirmedFactor(tenantId: string, userId: string) {
    return scopedStatement(this.deps.db, tenantId, (tx) => repo.hasConfirmedFactor(tx, tenantId, userId));
  }

  /** The kinds of the person's confirmed factors; which of them count is the tenant's rule (tenant-factors.ts). */
  confirmedKinds(tenantId: string, userId: string): Promise<FactorKind[]> {
    // One statement in one round trip: every correct password asks it.
    return scopedStatement(this.deps.db, tenantId, (tx) => repo.confirmedKinds(tx, tenantId, userId));
  }

  unusedRecoveryCodes(tenantId: string, userId: string) {
    return inTenant(this.deps.db, tenantId, (tx) => repo.countUnusedRecoveryCodes(tx, tenantId, userId));
  }

  /**
   * A new, unconfirmed TOTP factor: it counts for nothing until `confirmTotp` sees a first code.
   * It replaces any earlier enrollment left unconfirmed.
   */
  async startTotp(tenantId: string, userId: string, issuer: string, accountName: string, name = 'Authenticator app'): Promise<TotpEnrollment> {
    const label = name.trim().slice(0, TOTP_NAME_MAX) || 'Authenticator app';
    const key = newTotpKey();
    const factorId = randomUUID();
    const sealed = encrypt(this.deps.encryptionKey, key.toString('base64url'), this.aad(tenantId, factorId));
    await inTenant(this.deps.db, tenantId, async (tx) => {
      await repo.deleteUnconfirmedTotp(tx, tenantId, userId);
      await repo.insertTotpFactor(tx, tenantId, userId, factorId, label, sealed);
    });
    const uri = otpauthUri(key, issuer, accountName);
    return { factorId, secret: new URL(uri).searchParams.get('secret')!, uri };
  }

  /** Confirms an enrollment with its first code. A wrong code leaves it unconfirmed. */
  async confirmTotp(tenantId: string, userId: string, factorId: string, code: string): Promise<boolean> {
    return inTenant(this.deps.db, tenantId, async (tx) => {
      const row = await repo.findTotpForUpdate(tx, tenantId, userId, factorId);
      if (!row) throw NotFound('No such factor.');
      return this.checkTotp(tx, tenantId, row, code);
    });
  }

  /**
   * The first code of an enrollment started during sign-in: checked (and its step spent) without
   * confirming the factor, which `completeEnrollment` does once the recovery codes are saved.
   */
  async checkEnrollmentCode(tenantId: string, userId: string, factorId: string, code: string): Promise<boolean> {
    return inTenant(this.deps.db, tenantId, async (tx) => {
      const row = await repo.findTotpForUpdate(tx, tenantId, userId, factorId);
      if (!row || row.confirmed) return false;
      return this.checkTotp(tx, tenantId, row, code, false);
    });
  }

  /**
   * Confirms an enrollment whose first code `checkEnrollmentCode` accepted, and stores its
   * recovery codes (their hashes), in one transaction: either both count or neither does.
   */
  async completeEnrollment(tenantId: string, userId: string, factorId: string, recoveryCodeHashes: string[]): Promise<boolean> {
    return inTenant(this.deps.db, tenantId, async (tx) => {
      if (!(await repo.confirmCheckedTotp(tx, tenantId, userId, factorId))) return false;
      await repo.replaceRecoveryCodes(tx, tenantId, userId, recoveryCodeHashes);
      return true;
    });
  }

  /**
   * Stores drafted recovery codes (their hashes) for a person who has a confirmed factor — a
   * passkey set up within sign-in, which counts from its registration. False when they have none.
   */
  async saveRecoveryCodes(tenantId: string, userId: string, recoveryCodeHashes: string[]): Promise<boolean> {
    return inTenant(this.deps.db, tenantId, async (tx) => {
      if (!(await repo.hasConfirmedFactor(tx, tenantId, userId))) return false;
      await repo.replaceRecoveryCodes(tx, tenantId, userId, recoveryCodeHashes);
      return true;
    });
  }

  /** The secret of an enrollment not confirmed yet, to show again (a reload, a mistyped code); undefined otherwise. */
  async unconfirmedEnrollment(tenantId: string, userId: string, factorId: string, issuer: string, accountName: string): Promise<TotpEnrollment | undefined> {
    const row = await inTenant(this.deps.db, tenantId, (tx) => repo.findTotpForUpdate(tx, tenantId, userId, factorId));
    if (!row || row.confirmed || !row.secret_encrypted || row.last_totp_step !== null) return undefined;
    const key = Buffer.from(decrypt(this.deps.encryptionKey, row.secret_encrypted, this.aad(tenantId, factorId)), 'base64url');
    const uri = otpauthUri(key, issuer, accountName);
    return { factorId, secret: new URL(uri).searchParams.get('secret')!, uri };
  }

  /**
   * The sign-in check: a TOTP code against each confirmed TOTP factor, else a recovery code.
   * Six digits are tried as TOTP only; anything else as a recovery code only. `accept` leaves
   * out a kind the tenant does not allow (tenant-factors.ts), or recovery codes where only a
   * current code will do (re-authentication).
   */
  async verifySecondFactor(
    tenantId: string,
    userId: string,
    code: string,
    accept: { totp: boolean; recovery: boolean } = { totp: true, recovery: true },
  ): Promise<SecondFactorResult> {
    const typed = code.trim();
    if (typed.length === 0 || typed.length > 64) return { ok: false };
    if (/^\d{3}\s?\d{3}$/.test(typed)) {
      if (!accept.totp) return { ok: false };
      return (await this.verifyTotpCode(tenantId, userId, typed)) ? { ok: true, method: 'totp' } : { ok: false };
    }
    return inTenant(this.deps.db, tenantId, async (tx) => {
      if (!accept.recovery) return { ok: false };
      const hash = recoveryCodeHash(typed);
      let match: string | undefined;
      // Every unused code is compared, in constant time each, whatever matched first.
      for (const row of await repo.unusedRecoveryCodesForUpdate(tx, tenantId, userId)) {
        if (constantTimeEqual(row.code_hash, hash) && match === undefined) match = row.id;
      }
      if (match === undefined) return { ok: false };
      await repo.useRecoveryCode(tx, tenantId, match);
      return { ok: true, method: 'recovery_code' };
    });
  }

  /** Ten new codes not stored yet: shown once, stored (hashed) by `completeEnrollment`. */
  draftRecoveryCodes(): { codes: string[]; hashes: string[] } {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    return { codes, hashes: codes.map(recoveryCodeHash) };
  }

  /** Ten new codes, returned once in clear; the old set is void. */
  async regenerateRecoveryCodes(tenantId: string, userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    await inTenant(this.deps.db, tenantId, (tx) => repo.replaceRecoveryCodes(tx, tenantId, userId, codes.map(recoveryCodeHash)));
    return codes;
  }

  /** Removes one of the person's factors; removing the last one also voids the recovery codes. */
  async remove(tenantId: string, userId: string, factorId: string) {
    return inTenant(this.deps.db, tenantId, (tx) => removeFactorIn(tx, tenantId, userId, factorId));
  }

  /**
   * A sign-in code against the person's apps: one read, then for a match one conditional update
   * that spends its time step (repo.spendTotpStep) — two single statements, no transaction around
   * them: the update alone decides which of two requests with one code wins.
   */
  private async verifyTotpCode(tenantId: string, userId: string, code: string): Promise<boolean> {
    const db = this.deps.db;
    for (const row of await scopedStatement(db, tenantId, (tx) => repo.confirmedTotpFactors(tx, tenantId, userId))) {
      const step = this.matchingStepOf(tenantId, row, code);
      if (step !== null && (await scopedStatement(db, tenantId, (tx) => repo.spendTotpStep(tx, tenantId, row.id, step)))) return true;
    }
    return false;
  }

  /** The time step `code` matches on this app and has not been used at, or null. */
  private matchingStepOf(tenantId: string, row: { id: string; secret_encrypted: string | null; last_totp_step: string | number | null }, code: string) {
    if (!row.secret_encrypted) return null;
    const key = Buffer.from(decrypt(this.deps.encryptionKey, row.secret_encrypted, this.aad(tenantId, row.id)), 'base64url');
    const last = row.last_totp_step === null ? null : Number(row.last_totp_step);
    return matchingStep(key, code, this.now(), last);
  }

  private async checkTotp(
    tx: TenantTx,
    tenantId: string,
    row: { id: string; secret_encrypted: string | null; last_totp_step: string | number | null },
    code: string,
    confirm = true,
  ) {
    const step = this.matchingStepOf(tenantId, row, code);
    if (step === null) return false;
    await repo.acceptTotpStep(tx, tenantId, row.id, step, confirm);
    return true;
  }

  private aad(tenantId: string, factorId: string) {
    return `totp:${tenantId}:${factorId}`;
  }
}

/** Removes one factor in the caller's transaction; with the last one go the recovery codes. */
export async function removeFactorIn(tx: TenantTx, tenantId: string, userId: string, factorId: string) {
  const removed = await repo.deleteFactor(tx, tenantId, userId, factorId);
  if (!removed) throw NotFound('No such factor.');
  if (!(await repo.hasConfirmedFactor(tx, tenantId, userId))) await repo.replaceRecoveryCodes(tx, tenantId, userId, []);
  return removed;
}

/** Removes every factor and recovery code of the person, in the caller's transaction. */
export async function removeAllFactorsIn(tx: TenantTx, tenantId: string, userId: string) {
  const removed = await repo.deleteAllFactors(tx, tenantId, userId);
  await repo.replaceRecoveryCodes(tx, tenantId, userId, []);
  return removed;
}
