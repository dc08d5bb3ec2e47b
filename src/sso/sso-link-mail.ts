import type { Render } from '../base/views.ts';
import type { TenantTx } from '../db/database.ts';
import { mailRenderer } from '../mail/compose.ts';
import type { MailOutbox } from '../mail/outbox.ts';

/**
 * The mails of linking an existing account to an organization's sign-in: "link your organization
 * sign-in" (its token travels encrypted in the outbox), and "your account was linked", sent to
 * the account's stored address whenever a link is made by the account's own proof, so that a
 * link nobody asked for does not go unnoticed.
 */
export function registerSsoLinkMail(outbox: MailOutbox, publicUrl: string, renderHtml: Render, renderText: Render) {
  const compose = mailRenderer(renderHtml, renderText);
  outbox.register('sso_link', async (tenant, email, params) =>
    compose('sso_link', `Link your ${String(params.org_name)} sign-in to your ${tenant.name} account`, {
      tenantName: tenant.name,
      email,
      orgName: params.org_name,
      connectionName: params.connection_name,
      expires: new Date(String(params.expires_at)).toUTCString(),
      link: `${publicUrl}/t/${tenant.slug}/sso/link/confirm/${String(params.token)}`,
    }),
  );
  outbox.register('sso_linked', async (tenant, email, params) =>
    compose('sso_linked', `Your ${tenant.name} account was linked to single sign-on through ${String(params.connection_name)} of ${String(params.org_name)}`, {
      tenantName: tenant.name,
      email,
      orgName: params.org_name,
      connectionName: params.connection_name,
      proof: params.proof,
    }),
  );
}

/** Queues the "your account was linked" mail, in the transaction that makes the link. */
export function mailLinkMade(
  outbox: MailOutbox,
  tx: TenantTx,
  tenantId: string,
  address: string,
  params: { connectionName: string; orgName: string; proof: 'password' | 'email_link' },
) {
  return outbox.enqueue(tx, tenantId, 'sso_linked', address, {
    connection_name: params.connectionName,
    org_name: params.orgName,
    proof: params.proof === 'password' ? 'the account password' : 'a link mailed to this address',
  });
}
