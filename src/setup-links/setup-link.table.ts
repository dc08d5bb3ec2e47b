import type { Generated, JSONColumnType, Selectable } from 'kysely';
import type { Actor } from '../base/actor.ts';

/** What a setup link may set up: its pages show, and its posts reach, only these steps. */
export const SETUP_FEATURES = ['domains', 'sso', 'directory_sync'] as const;
export type SetupFeature = (typeof SETUP_FEATURES)[number];

/**
 * The last test sign-in started from the link: when, through which connection, and (once the IdP
 * answered) what it sent and what a real sign-in would have done — or why the answer was refused.
 */
export interface SetupTest {
  started_at: string;
  connection_id: string;
  finished_at?: string;
  ok?: boolean;
  error?: string;
  profile?: {
    subject: string;
    email: string;
    name: string | null;
    given_name: string | null;
    family_name: string | null;
    groups: string[];
    mfa: boolean;
  };
  /** What an actual sign-in with this answer would do, in words. */
  outcome?: string;
}

export interface SetupLinkTable {
  tenant_id: string;
  org_id: string;
  id: Generated<string>;
  /** SHA-256 of the secret in the link's URL. */
  token_hash: string;
  features: SetupFeature[];
  expires_at: Date;
  created_by: JSONColumnType<Actor, string, string>;
  revoked_at: Date | null;
  /** SHA-256 of the random value in the cookie of the browser that opened the link first. */
  browser_hash: string | null;
  opened_at: Date | null;
  last_used_at: Date | null;
  /** The SSO connection the link sets up (its id is chosen before the connection exists). */
  connection_id: string | null;
  last_test: JSONColumnType<SetupTest | null, string | null, string | null>;
  created_at: Generated<Date>;
}

export type SetupLinkRow = Selectable<SetupLinkTable>;
