import type { Generated } from 'kysely';

export type AccountTokenPurpose = 'verify_email' | 'reset_password';

export interface AccountTokenTable {
  tenant_id: string;
  id: Generated<string>;
  user_id: string;
  purpose: AccountTokenPurpose;
  token_hash: string;
  expires_at: Date;
  used_at: Date | null;
  created_at: Generated<Date>;
}

export interface AuthThrottleTable {
  tenant_id: string;
  /** `account:<lowercased email>` or `ip:<address>`. */
  key: string;
  failures: number;
  last_failure_at: Date | null;
  locked_until: Date | null;
}
