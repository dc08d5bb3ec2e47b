import type { Render } from '../base/views.ts';
import { mailRenderer } from '../mail/compose.ts';
import type { MailOutbox } from '../mail/outbox.ts';

/** The mails an organization's owners get when a tenant administrator approves or rejects it (org-lifecycle.ts). */
export function registerLifecycleMail(outbox: MailOutbox, publicUrl: string, renderHtml: Render, renderText: Render) {
  const compose = mailRenderer(renderHtml, renderText);
  const link = (slug: string, orgId: unknown) => `${publicUrl}/t/${slug}/portal/organizations/${String(orgId)}/members`;
  outbox.register('org_approved', async (tenant, _email, params) =>
    compose('org_approved', `${String(params.org_name)} is approved`, {
      tenantName: tenant.name,
      orgName: params.org_name,
      link: link(tenant.slug, params.org_id),
    }),
  );
  outbox.register('org_rejected', async (tenant, _email, params) =>
    compose('org_rejected', `${String(params.org_name)} was not approved`, {
      tenantName: tenant.name,
      orgName: params.org_name,
      reason: params.reason,
      link: link(tenant.slug, params.org_id),
    }),
  );
}
