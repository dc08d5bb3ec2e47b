import type { Render } from '../base/views.ts';
import { mailRenderer } from '../mail/compose.ts';
import type { MailOutbox } from '../mail/outbox.ts';

/** The "link your organization sign-in" email; its token travels encrypted in the outbox. */
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
}
