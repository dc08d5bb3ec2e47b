import Router from '@koa/router';
import type { Context } from 'koa';
import { AddDomain, CreateConnection, UpdateConnection } from '../admin-api/schemas.ts';
import { NotFound } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import type { Render } from '../base/views.ts';
import type { OrgService } from '../orgs/org.service.ts';
import type { ConnectionService } from '../sso/connection.service.ts';
import type { DomainService } from '../sso/domain.service.ts';
import type { OidcSso } from '../sso/oidc-sso.ts';
import type { SamlSso } from '../sso/saml/saml-sso.ts';
import type { ConnectionRow } from '../sso/sso.table.ts';
import { type FormErrors, FormRejected, formErrorsOf, formValues, noticeFor, parseForm, portalPage, redirectWithNotice } from './forms.ts';
import { type OrgPageContext, orgChange, orgPageContext, requireAbility } from './org-context.ts';

const NOTICES = {
  created: 'Connection created. Give your IdP the values below, then test it.',
  saved: 'Connection saved.',
  deleted: 'Connection deleted.',
  domain_added: 'Domain added. Publish the TXT record, then verify it.',
  domain_verified: 'Domain verified: sign-ins with this email domain now go to your connection.',
  domain_removed: 'Domain removed.',
};

const CONNECTION_FIELDS = [
  'type',
  'name',
  'issuer_url',
  'client_id',
  'client_secret',
  'metadata_url',
  'metadata_xml',
  'idp_entity_id',
  'idp_sso_url',
  'idp_certificate',
  'default_role',
] as const;
const METADATA_MAX = 500_000;

/**
 * The connection form as the Admin API's body. SAML takes one of: a metadata URL, pasted
 * metadata XML, or the three fields by hand. Empty fields are "not given" — on edit, "keep".
 */
function connectionInput(values: Record<string, string>, checks: { enabled: boolean; auto_provision: boolean }) {
  const given = (k: string) => (values[k] ? { [k]: values[k] } : {});
  const common = { ...given('name'), ...given('default_role'), enabled: checks.enabled, auto_provision: checks.auto_provision };
  if (values.type === 'oidc') return { type: 'oidc', ...common, ...given('issuer_url'), ...given('client_id'), ...given('client_secret') };
  return {
    type: 'saml',
    ...common,
    ...given('metadata_url'),
    ...given('metadata_xml'),
    ...given('idp_entity_id'),
    ...given('idp_sso_url'),
    ...(values.idp_certificate ? { idp_certificates: [values.idp_certificate] } : {}),
  };
}

/** The SSO tab: connections (SAML, OIDC), what to give the IdP, domains and their verification. */
export function ssoPages(deps: { orgs: OrgService; connections: ConnectionService; domains: DomainService; oidc: OidcSso; saml: SamlSso; render: Render }) {
  const router = new Router();
  const page = portalPage(deps.render);
  const actorOf = (org: OrgPageContext) => ({ type: 'user' as const, id: org.viewer.user.id });

  /** Admins see the SSO tab; only owners and tenant admins change it (access.ts, configureSso). */
  async function ssoOrg(ctx: Context) {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'manage', 'see single sign-on');
    return org;
  }

  async function ssoConfigOrg(ctx: Context) {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'configureSso', 'change single sign-on (owners only)');
    return org;
  }

  async function connectionOf(ctx: Context, org: OrgPageContext): Promise<ConnectionRow> {
    const id = String(ctx.params.connectionId);
    if (!isUuid(id)) throw NotFound('No such SSO connection in this organization.');
    return deps.connections.get(org.tenantId, org.org.id, id);
  }

  async function overview(ctx: Context, org: OrgPageContext, extra: { values?: Record<string, string>; errors?: FormErrors } = {}, status = 200) {
    const [connections, domains] = await Promise.all([deps.connections.list(org.tenantId, org.org.id), deps.domains.list(org.tenantId, org.org.id)]);
    page(
      ctx,
      'portal/org-sso.njk',
      {
        title: `SSO · ${org.org.name}`,
        section: 'portal',
        tab: 'sso',
        org,
        connections: connections.map((c) => deps.connections.present(ctx.state.runtime.tenant.slug, c)),
        domains,
        notice: noticeFor(ctx, NOTICES),
        formError: extra.errors?._form,
        values: extra.values ?? {},
        errors: extra.errors ?? {},
      },
      status,
    );
  }

  async function roleOptions(org: OrgPageContext) {
    return (await deps.orgs.listRoles(org.tenantId, org.org.id)).filter((r) => r.name !== 'owner').map((r) => ({ value: r.name, label: r.name }));
  }

  async function connectionForm(
    ctx: Context,
    org: OrgPageContext,
    view: {
      connection?: ReturnType<ConnectionService['present']>;
      values: Record<string, string>;
      checks: { enabled: boolean; auto_provision: boolean };
      errors: FormErrors;
      check?: { ok: boolean; message: string };
    },
    status = 200,
  ) {
    page(
      ctx,
      'portal/org-sso-connection.njk',
      {
        title: `${view.connection ? view.connection.name : 'New connection'} · ${org.org.name}`,
        section: 'portal',
        tab: 'sso',
        script: 'portal.js',
        org,
        roleOptions: await roleOptions(org),
        notice: noticeFor(ctx, NOTICES),
        formError: view.errors._form,
        ...view,
      },
      status,
    );
  }

  router.get('/organizations/:orgId/sso', async (ctx) => overview(ctx, await ssoOrg(ctx)));

  // Domains first: their paths would otherwise be taken for a connection id.

  const ssoTab = { back: 'sso', show: overview, ability: 'configureSso', what: 'change single sign-on (owners only)' } as const;

  router.post(
    '/organizations/:orgId/sso/domains',
    orgChange(deps.orgs, { ...ssoTab, fields: ['domain'] }, async (_ctx, org, values) => {
      const { domain } = parseForm(AddDomain, { domain: values.domain });
      await deps.domains.add(org.tenantId, actorOf(org), org.org.id, domain);
      return 'domain_added';
    }),
  );

  router.post(
    '/organizations/:orgId/sso/domains/:domain/verify',
    orgChange(deps.orgs, { ...ssoTab, refusedStatus: 409 }, async (ctx, org) => {
      await deps.domains.verify(org.tenantId, actorOf(org), org.org.id, domainOf(ctx));
      return 'domain_verified';
    }),
  );

  router.post(
    '/organizations/:orgId/sso/domains/:domain/remove',
    orgChange(deps.orgs, ssoTab, async (ctx, org) => {
      await deps.domains.remove(org.tenantId, actorOf(org), org.org.id, domainOf(ctx));
      return 'domain_removed';
    }),
  );

  router.get('/organizations/:orgId/sso/new', async (ctx) => {
    const org = await ssoConfigOrg(ctx);
    const type = ctx.query.type === 'oidc' ? 'oidc' : 'saml';
    await connectionForm(ctx, org, { values: { type, default_role: 'member' }, checks: { enabled: true, auto_provision: true }, errors: {} });
  });

  router.post('/organizations/:orgId/sso', async (ctx) => {
    const org = await ssoConfigOrg(ctx);
    const values = {
      ...formValues(
        ctx,
        CONNECTION_FIELDS.filter((f) => f !== 'metadata_xml' && f !== 'idp_certificate'),
      ),
      ...formValues(ctx, ['metadata_xml', 'idp_certificate'], METADATA_MAX),
    };
    const checks = { enabled: formValues(ctx, ['enabled']).enabled === 'on', auto_provision: formValues(ctx, ['auto_provision']).auto_provision === 'on' };
    try {
      const input = parseForm(CreateConnection, connectionInput(values, checks));
      if (input.type === 'saml' && !input.metadata_url && !input.metadata_xml && !(input.idp_entity_id && input.idp_sso_url && input.idp_certificates)) {
        throw new FormRejected({
          _form: 'Give the IdP metadata URL, paste its metadata XML, or fill in entity ID, SSO URL and certificate.',
          metadata_url: 'Give a metadata URL, the XML, or the fields below.',
        });
      }
      const created = await deps.connections.create(org.tenantId, actorOf(org), org.org.id, input);
      redirectWithNotice(ctx, `${org.url}/sso/${created.id}`, 'created');
    } catch (err) {
      await connectionForm(ctx, org, { values: { ...values, client_secret: '' }, checks, errors: formErrorsOf(err) }, 422);
    }
  });

  router.get('/organizations/:orgId/sso/:connectionId', async (ctx) => {
    const org = await ssoOrg(ctx);
    const c = deps.connections.present(ctx.state.runtime.tenant.slug, await connectionOf(ctx, org));
    await connectionForm(ctx, org, { connection: c, values: editValues(c), checks: { enabled: c.enabled, auto_provision: c.auto_provision }, errors: {} });
  });

  router.post('/organizations/:orgId/sso/:connectionId', async (ctx) => {
    const org = await ssoConfigOrg(ctx);
    const current = deps.connections.present(ctx.state.runtime.tenant.slug, await connectionOf(ctx, org));
    const values = {
      ...formValues(
        ctx,
        CONNECTION_FIELDS.filter((f) => f !== 'metadata_xml' && f !== 'idp_certificate'),
      ),
      ...formValues(ctx, ['metadata_xml', 'idp_certificate'], METADATA_MAX),
      type: current.type,
    };
    const checks = { enabled: formValues(ctx, ['enabled']).enabled === 'on', auto_provision: formValues(ctx, ['auto_provision']).auto_provision === 'on' };
    try {
      const { type: _t, ...patch } = connectionInput(values, checks) as Record<string, unknown>;
      void _t;
      // Unchanged SAML fields are not sent: re-sending them would re-read the IdP's configuration.
      const before = current as Record<string, unknown>;
      for (const k of ['idp_entity_id', 'idp_sso_url', 'metadata_url', 'issuer_url', 'client_id']) if (patch[k] === before[k]) delete patch[k];
      await deps.connections.update(org.tenantId, actorOf(org), org.org.id, current.id, parseForm(UpdateConnection, patch));
      redirectWithNotice(ctx, `${org.url}/sso/${current.id}`, 'saved');
    } catch (err) {
      await connectionForm(ctx, org, { connection: current, values: { ...values, client_secret: '' }, checks, errors: formErrorsOf(err) }, 422);
    }
  });

  /** "Test connection": checks the configuration against the IdP; a failure is kept as the last error. */
  router.post('/organizations/:orgId/sso/:connectionId/test', async (ctx) => {
    const org = await ssoConfigOrg(ctx);
    const row = await connectionOf(ctx, org);
    let check: { ok: boolean; message: string };
    try {
      check = { ok: true, message: row.type === 'oidc' ? await deps.oidc.check(row) : deps.saml.check(row, ctx.state.runtime.tenant.slug) };
    } catch (err) {
      const message = `Test failed: ${(err as Error).message}`;
      await deps.connections.recordError(org.tenantId, row.id, message);
      check = { ok: false, message };
    }
    const c = deps.connections.present(ctx.state.runtime.tenant.slug, check.ok ? row : await connectionOf(ctx, org));
    await connectionForm(
      ctx,
      org,
      { connection: c, values: editValues(c), checks: { enabled: c.enabled, auto_provision: c.auto_provision }, errors: {}, check },
      check.ok ? 200 : 422,
    );
  });

  router.post(
    '/organizations/:orgId/sso/:connectionId/delete',
    orgChange(deps.orgs, ssoTab, async (ctx, org) => {
      await deps.connections.delete(org.tenantId, actorOf(org), org.org.id, (await connectionOf(ctx, org)).id);
      return 'deleted';
    }),
  );

  return router;
}

function domainOf(ctx: Context): string {
  const d = String(ctx.params.domain).toLowerCase();
  if (d.length > 253 || !/^[a-z0-9.-]+$/.test(d)) throw NotFound('The organization has no such domain.');
  return d;
}

function editValues(c: ReturnType<ConnectionService['present']>): Record<string, string> {
  const v = c as Record<string, unknown>;
  const s = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : '');
  return {
    type: c.type,
    name: c.name,
    default_role: c.default_role,
    issuer_url: s('issuer_url'),
    client_id: s('client_id'),
    client_secret: '',
    metadata_url: s('metadata_url'),
    metadata_xml: '',
    idp_entity_id: s('idp_entity_id'),
    idp_sso_url: s('idp_sso_url'),
    idp_certificate: '',
  };
}
