import type { Render } from '../base/views.ts';
import { mailRenderer } from '../mail/compose.ts';
import type { MailOutbox } from '../mail/outbox.ts';

/** The invitation email: its parameters (with the raw token) travel encrypted in the outbox. */
export function registerInvitationMail(outbox: MailOutbox, publicUrl: string, renderHtml: Render, renderText: Render) {
  const compose = mailRenderer(renderHtml, renderText);
  outbox.register('org_invitation', async (tenant, _email, params) =>
    compose('org_invitation', `You're invited to join ${String(params.org_name)}`, {
      tenantName: tenant.name,
      orgName: params.org_name,
      role: params.role,
      expires: new Date(String(params.expires_at)).toUTCString(),
      link: `${publicUrl}/t/${tenant.slug}/invitations/${String(params.token)}`,
    }),
  );
}
