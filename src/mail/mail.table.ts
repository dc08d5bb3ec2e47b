import type { Generated } from 'kysely';

export type MailStatus = 'pending' | 'sent' | 'failed' | 'discarded';

export interface MailOutboxTable {
  tenant_id: string;
  id: Generated<string>;
  /** Which message: the kind a composer was registered for (MailOutbox.register). */
  kind: string;
  recipient: string;
  /** Template parameters, AES-GCM encrypted (they may hold one-time links); null once sent. */
  params_encrypted: string | null;
  subject: string | null;
  status: Generated<MailStatus>;
  attempts: Generated<number>;
  next_attempt_at: Generated<Date>;
  last_error: string | null;
  created_at: Generated<Date>;
  sent_at: Date | null;
}
