import { sql } from 'kysely';
import { constantTimeEqual, randomSecret, sha256Hex } from '../crypto/secrets.ts';
import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import type { SsoBinding } from './sso-request.ts';
import type { UpstreamProfile } from './upstream.ts';

/** How long the person has to prove the account is theirs (and how long the mailed link works). */
export const PENDING_LINK_TTL_MS = 30 * 60 * 1000;
/** Mails a pending link may send, and how far apart. */
const MAX_MAILS = 3;
const MAIL_INTERVAL_MS = 60 * 1000;

export interface PendingLink {
  id: string;
  tenantId: string;
  connectionId: string;
  userId: string;
  profile: UpstreamProfile;
  binding: SsoBinding;
  mailsSent: number;
  lastMailAt: Date | null;
}

type Row = {
  id: string;
  tenant_id: string;
  connection_id: string;
  user_id: string;
  profile: Record<string, unknown>;
  interaction_uid: string | null;
  invitation_id: string | null;
  browser_hash: string;
  mails_sent: number;
  last_mail_at: Date | null;
  expires_at: Date;
};

function toPending(r: Row): PendingLink {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    connectionId: r.connection_id,
    userId: r.user_id,
    profile: r.profile as unknown as UpstreamProfile,
    binding: { interactionUid: r.interaction_uid, invitationId: r.invitation_id },
    mailsSent: r.mails_sent,
    lastMailAt: r.last_mail_at,
  };
}

/**
 * SSO sign-ins that named an existing account the person has not yet proven is theirs. Nothing is
 * linked and no session exists while one waits. The browser that came back from the IdP holds a
 * secret (a cookie; only its hash is stored) that finds it again; the mailed link carries a
 * second secret of its own, sent to the account's stored address only.
 */
export class PendingLinks {
  constructor(
    private readonly db: Database,
    private readonly outbox: MailOutbox,
  ) {}

  /** Stores the sign-in; returns the cookie value for the browser (`<id>.<secret>`). */
  async create(tenantId: string, connectionId: string, userId: string, profile: UpstreamProfile, binding: SsoBinding): Promise<string> {
    const secret = randomSecret(32);
    const { id } = await inTenant(this.db, tenantId, (tx) =>
      tx
        .insertInto('sso_pending_links')
        .values({
          tenant_id: tenantId,
          connection_id: connectionId,
          subject: profile.subject,
          user_id: userId,
          profile: JSON.stringify(profile),
          interaction_uid: binding.interactionUid,
          invitation_id: binding.invitationId,
          browser_hash: sha256Hex(secret),
          expires_at: new Date(Date.now() + PENDING_LINK_TTL_MS),
        })
        .returning('id')
        .executeTakeFirstOrThrow(),
    );
    return `${id}.${secret}`;
  }

  /** The pending sign-in this browser's cookie names, while it lives. */
  async forBrowser(tenantId: string, cookie: string | undefined): Promise<PendingLink | undefined> {
    const m = /^([0-9a-f-]{36})\.([\w-]{20,100})$/.exec(cookie ?? '');
    if (!m) return undefined;
    const row = await inTenant(this.db, tenantId, (tx) =>
      tx.selectFrom('sso_pending_links').selectAll().where('tenant_id', '=', tenantId).where('id', '=', m[1]!).executeTakeFirst(),
    );
    if (!row || row.expires_at.getTime() < Date.now() || !constantTimeEqual(row.browser_hash, sha256Hex(m[2]!))) return undefined;
    return toPending(row as Row);
  }

  /** The pending sign-in a mailed link names, while it lives (the link's token is compared by hash). */
  async forMailToken(tenantId: string, token: string): Promise<PendingLink | undefined> {
    if (!/^[\w-]{20,100}$/.test(token)) return undefined;
    const row = await inTenant(this.db, tenantId, (tx) =>
      tx.selectFrom('sso_pending_links').selectAll().where('tenant_id', '=', tenantId).where('mail_token_hash', '=', sha256Hex(token)).executeTakeFirst(),
    );
    if (!row || row.expires_at.getTime() < Date.now()) return undefined;
    return toPending(row as Row);
  }

  /**
   * Mails a one-time link to `address` (the account's stored address, never one the IdP asserted),
   * at most MAX_MAILS times and once a minute; a new mail voids the previous link.
   * Returns false when the limit says not now.
   */
  async mailLink(pending: PendingLink, address: string, params: { connectionName: string; orgName: string }): Promise<boolean> {
    const token = randomSecret(32);
    return inTenant(this.db, pending.tenantId, async (tx) => {
      const updated = await tx
        .updateTable('sso_pending_links')
        .set((eb) => ({ mail_token_hash: sha256Hex(token), mails_sent: eb('mails_sent', '+', 1), last_mail_at: new Date() }))
        .where('tenant_id', '=', pending.tenantId)
        .where('id', '=', pending.id)
        // The limits, in the statement that takes a send: two clicks at once send one mail.
        .where('mails_sent', '<', MAX_MAILS)
        .where((eb) => eb.or([eb('last_mail_at', 'is', null), eb('last_mail_at', '<', sql<Date>`now() - make_interval(secs => ${MAIL_INTERVAL_MS / 1000})`)]))
        .returning('id')
        .executeTakeFirst();
      if (!updated) return false;
      await this.outbox.enqueue(tx, pending.tenantId, 'sso_link', address, {
        token,
        connection_name: params.connectionName,
        org_name: params.orgName,
        expires_at: new Date(Date.now() + PENDING_LINK_TTL_MS).toISOString(),
      });
      return true;
    });
  }

  /** Used up: the link was made (or the person gave up). */
  async remove(tenantId: string, id: string): Promise<void> {
    await inTenant(this.db, tenantId, (tx) => tx.deleteFrom('sso_pending_links').where('tenant_id', '=', tenantId).where('id', '=', id).execute());
  }
}
