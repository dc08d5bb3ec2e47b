import {
  type AuthenticationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { z } from 'zod';
import { NotFound } from '../base/errors.ts';
import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import * as repo from './passkey.repo.ts';
import { providerName } from './passkey-names.ts';

/**
 * Passkeys (WebAuthn): registration on the account's Security page, assertions at sign-in (as a
 * second factor after the password, or alone). Ceremonies are verified by @simplewebauthn/server;
 * what it leaves to us is here: challenges spent once, credentials looked up in this tenant only
 * and bound to their person, sign counts that never go back.
 */

/** How long a challenge may be answered (registration and sign-in alike). */
export const PASSKEY_CHALLENGE_SECONDS = 300;
export const PASSKEY_NAME_MAX = 64;
export const DEFAULT_PASSKEY_NAME = 'Passkey';

/** A sign-in challenge as the interaction keeps it: what it is for, and until when. */
export interface StoredChallenge {
  challenge: string;
  purpose: 'mfa' | 'signin';
  expiresAt: number;
}

export type PasskeyRefusal =
  /** The JSON is not a WebAuthn credential at all. */
  | 'malformed'
  /** No passkey of this tenant (or of this person) has that credential id. */
  | 'unknown_credential'
  /** Challenge, origin, RP ID, signature, user presence or user verification did not check out. */
  | 'invalid'
  /** The signature counter went back: a cloned authenticator. */
  | 'counter_regressed';

export type AssertionResult =
  | { ok: true; userId: string; factorId: string; amr: string[] }
  | { ok: false; refused: PasskeyRefusal; userId?: string | undefined };

/** A registered passkey, and what its creation showed (`amr`: as an assertion's, for a sign-in that sets it up). */
export type RegistrationResult =
  | { ok: true; factor: { id: string; name: string }; amr: string[] }
  | { ok: false; refused: PasskeyRefusal | 'expired' | 'already_registered' };

const base64url = z
  .string()
  .regex(/^[A-Za-z0-9_-]*={0,2}$/)
  .max(8192);
const AssertionJson = z.object({
  id: base64url.min(1).max(1400),
  rawId: base64url,
  type: z.literal('public-key'),
  response: z.object({ clientDataJSON: base64url, authenticatorData: base64url, signature: base64url, userHandle: base64url.optional().nullable() }),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.string().max(40).optional().nullable(),
});
const RegistrationJson = z.object({
  id: base64url.min(1).max(1400),
  rawId: base64url,
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: base64url,
    attestationObject: base64url,
    transports: z.array(z.string().max(40)).max(10).optional(),
  }),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.string().max(40).optional().nullable(),
});

/** JSON text that does not parse: the caller answers 400. */
export class UnreadableCredential extends Error {}

/** Parses the browser's answer (`JSON.stringify` of what @simplewebauthn/browser returned). */
export function parseCredentialJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UnreadableCredential('The passkey answer is not JSON.');
  }
}

/** The user handle we give authenticators: the account id's 16 bytes (stable, and no personal data). */
const userHandleOf = (userId: string) => Buffer.from(userId.replace(/-/g, ''), 'hex');

/**
 * RFC 8176: `hwk` is a proof of possession of a hardware-secured key, `swk` of a software-secured
 * one. A backed-up (synced) passkey's private key leaves the device for its provider's cloud, so
 * it is not bound to hardware: `swk`. A device-bound one (a security key, a platform
 * authenticator without sync) is `hwk`. `user` when the authenticator verified the person (PIN,
 * biometrics).
 */
export function passkeyAmr(backedUp: boolean, userVerified: boolean): string[] {
  return [backedUp ? 'swk' : 'hwk', ...(userVerified ? ['user'] : [])];
}

export class PasskeyService {
  readonly rpId: string;
  readonly origin: string;

  constructor(private readonly deps: { db: Database; publicUrl: string }) {
    // The RP ID is the issuer's host and the expected origin its origin: a passkey made here is
    // good at every tenant's sign-in page of this server, and nowhere else.
    const url = new URL(deps.publicUrl);
    this.rpId = url.hostname;
    this.origin = url.origin;
  }

  /** Options for `navigator.credentials.create`; the challenge is stored for this person only. */
  async registrationOptions(
    tenantId: string,
    user: { id: string; email: string; name: string | null },
    rpName: string,
  ): Promise<PublicKeyCredentialCreationOptionsJSON> {
    return inTenant(this.deps.db, tenantId, async (tx) => {
      const existing = await repo.passkeysOf(tx, tenantId, user.id);
      const options = await generateRegistrationOptions({
        rpName,
        rpID: this.rpId,
        userName: user.email,
        userDisplayName: user.name ?? user.email,
        userID: userHandleOf(user.id),
        timeout: PASSKEY_CHALLENGE_SECONDS * 1000,
        attestationType: 'none',
        // The same authenticator twice would be one factor counted as two.
        excludeCredentials: existing.map((c) => ({ id: c.credential_id!, transports: c.transports ?? [] })),
        // Discoverable, so the same passkey also signs in without an email; verification is asked
        // for but not demanded here (a security key without a PIN is still a good second factor).
        authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
      });
      await repo.storeRegistrationChallenge(tx, tenantId, user.id, options.challenge, new Date(Date.now() + PASSKEY_CHALLENGE_SECONDS * 1000));
      return options;
    });
  }

  /** Verifies a registration against a challenge of this person (spent whatever the outcome) and stores the passkey. */
  async register(tenantId: string, userId: string, answer: unknown, name: string): Promise<RegistrationResult> {
    const parsed = RegistrationJson.safeParse(answer);
    if (!parsed.success) return { ok: false, refused: 'malformed' };
    const response = parsed.data as RegistrationResponseJSON;
    const challenge = challengeOf(response.response.clientDataJSON);
    if (!challenge) return { ok: false, refused: 'malformed' };
    return inTenant(this.deps.db, tenantId, async (tx) => {
      if (!(await repo.spendRegistrationChallenge(tx, tenantId, userId, challenge))) return { ok: false, refused: 'expired' } as const;
      let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
      try {
        verified = await verifyRegistrationResponse({
          response,
          expectedChallenge: challenge,
          expectedOrigin: this.origin,
          expectedRPID: this.rpId,
          requireUserVerification: false,
        });
      } catch {
        return { ok: false, refused: 'invalid' } as const;
      }
      if (!verified.verified) return { ok: false, refused: 'invalid' } as const;
      const info = verified.registrationInfo;
      const factor = await repo.insertPasskey(tx, tenantId, userId, {
        name: name.trim().slice(0, PASSKEY_NAME_MAX) || providerName(info.aaguid) || DEFAULT_PASSKEY_NAME,
        credentialId: info.credential.id,
        publicKey: Buffer.from(info.credential.publicKey),
        signCount: info.credential.counter,
        transports: info.credential.transports ?? response.response.transports ?? [],
        aaguid: info.aaguid,
        backedUp: info.credentialBackedUp,
      });
      // Unique per tenant: a passkey already has that credential id (this person's or another's).
      if (!factor) return { ok: false, refused: 'already_registered' } as const;
      return { ok: true, factor, amr: passkeyAmr(info.credentialBackedUp, info.userVerified) } as const;
    });
  }

  /**
   * Options for `navigator.credentials.get`. For a second factor, `userId` limits the choice to
   * that person's passkeys; without it (passwordless) the authenticator offers its discoverable
   * ones. The caller stores the challenge (on the interaction).
   */
  async authenticationOptions(
    tenantId: string,
    opts: { userId?: string; purpose: StoredChallenge['purpose'] },
  ): Promise<{ options: PublicKeyCredentialRequestOptionsJSON; stored: StoredChallenge }> {
    const allow = opts.userId ? await inTenant(this.deps.db, tenantId, (tx) => repo.passkeysOf(tx, tenantId, opts.userId!)) : [];
    const options = await generateAuthenticationOptions({
      rpID: this.rpId,
      timeout: PASSKEY_CHALLENGE_SECONDS * 1000,
      allowCredentials: allow.map((c) => ({ id: c.credential_id!, transports: c.transports ?? [] })),
      userVerification: opts.purpose === 'signin' ? 'required' : 'preferred',
    });
    return { options, stored: { challenge: options.challenge, purpose: opts.purpose, expiresAt: Date.now() + PASSKEY_CHALLENGE_SECONDS * 1000 } };
  }

  /** Whose passkey a credential id names in this tenant (to check the account's state before verifying). */
  async ownerOf(tenantId: string, answer: unknown): Promise<string | undefined> {
    const parsed = AssertionJson.safeParse(answer);
    if (!parsed.success) return undefined;
    return inTenant(this.deps.db, tenantId, (tx) => repo.passkeyOwner(tx, tenantId, parsed.data.id));
  }

  /**
   * Verifies an assertion against a challenge the caller has already spent. `userId`: the person
   * it must come from (a second factor, or the owner the caller looked up). The passkey's sign
   * count and last use are updated in the same transaction that locked it.
   */
  async verifyAssertion(
    tenantId: string,
    answer: unknown,
    expect: { challenge: string; userId?: string; requireUserVerification: boolean },
  ): Promise<AssertionResult> {
    const parsed = AssertionJson.safeParse(answer);
    if (!parsed.success) return { ok: false, refused: 'malformed' };
    const response = parsed.data as AuthenticationResponseJSON;
    return inTenant(this.deps.db, tenantId, async (tx) => {
      const row = await repo.passkeyByCredentialForUpdate(tx, tenantId, response.id);
      if (!row || (expect.userId !== undefined && row.user_id !== expect.userId)) return { ok: false, refused: 'unknown_credential' } as const;
      // A discoverable credential names its person too; it must be the one the passkey was made for.
      const handle = response.response.userHandle;
      if (handle && !Buffer.from(handle, 'base64url').equals(userHandleOf(row.user_id))) return { ok: false, refused: 'invalid', userId: row.user_id } as const;
      const stored = Number(row.sign_count ?? 0);
      let result: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
      try {
        result = await verifyAuthenticationResponse({
          response,
          expectedChallenge: expect.challenge,
          expectedOrigin: this.origin,
          expectedRPID: this.rpId,
          credential: { id: row.credential_id!, publicKey: new Uint8Array(row.public_key!), counter: stored, transports: (row.transports ?? []) as never },
          requireUserVerification: expect.requireUserVerification,
        });
      } catch (err) {
        // The library refuses a counter that did not move forward; say so, it means a clone.
        const regressed = /counter/i.test((err as Error).message);
        return { ok: false, refused: regressed ? 'counter_regressed' : 'invalid', userId: row.user_id } as const;
      }
      const info = result.authenticationInfo;
      if (!result.verified) return { ok: false, refused: 'invalid', userId: row.user_id } as const;
      // Authenticators without a counter send 0 every time; a counter that goes back is a clone.
      if (stored > 0 && info.newCounter > 0 && info.newCounter <= stored) return { ok: false, refused: 'counter_regressed', userId: row.user_id } as const;
      await repo.recordPasskeyUse(tx, tenantId, row.id, info.newCounter, info.credentialBackedUp);
      return { ok: true, userId: row.user_id, factorId: row.id, amr: passkeyAmr(info.credentialBackedUp, info.userVerified) } as const;
    });
  }

  /** Renames one of the person's factors; another person's id is not found. */
  async rename(tenantId: string, userId: string, factorId: string, name: string) {
    const clean = name.trim().slice(0, PASSKEY_NAME_MAX);
    if (!clean) return undefined;
    const renamed = await inTenant(this.deps.db, tenantId, (tx) => repo.renameFactor(tx, tenantId, userId, factorId, clean));
    if (!renamed) throw NotFound('No such factor of yours.');
    return renamed;
  }
}

/** The challenge a browser signed, read from its clientDataJSON (then checked by the library). */
function challengeOf(clientDataJSON: string): string | undefined {
  try {
    const data = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown };
    return typeof data.challenge === 'string' && data.challenge.length <= 200 ? data.challenge : undefined;
  } catch {
    return undefined;
  }
}
