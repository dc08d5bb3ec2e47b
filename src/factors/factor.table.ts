import type { Generated } from 'kysely';

export type FactorKind = 'totp' | 'passkey';

export interface UserFactorTable {
  tenant_id: string;
  id: Generated<string>;
  user_id: string;
  kind: FactorKind;
  name: string;
  /** A TOTP factor counts only once its first code was entered. */
  confirmed: Generated<boolean>;
  secret_encrypted: string | null;
  /** The last TOTP time step accepted: no code at or before it is accepted again. */
  last_totp_step: string | number | null;
  credential_id: string | null;
  public_key: Buffer | null;
  sign_count: string | number | null;
  transports: string[] | null;
  aaguid: string | null;
  backed_up: boolean | null;
  created_at: Generated<Date>;
  last_used_at: Date | null;
}

export interface RecoveryCodeTable {
  tenant_id: string;
  id: Generated<string>;
  user_id: string;
  code_hash: string;
  used_at: Date | null;
  created_at: Generated<Date>;
}

/** A passkey registration's challenge, single use, bound to the person who asked for it. */
export interface PasskeyChallengeTable {
  tenant_id: string;
  challenge: string;
  user_id: string;
  expires_at: Date;
}
