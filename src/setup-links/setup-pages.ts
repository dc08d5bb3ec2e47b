import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { AddDomain, CreateConnection, UpdateConnection } from '../admin-api/schemas.ts';
import type { Actor } from '../base/actor.ts';
import { NotFound } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import type { Render } from '../base/views.ts';
import { constantTimeEqual, sha256Hex } from '../crypto/secrets.ts';
import { formField, renderPage } from '../http/pages.ts';
import { type FormErrors, FormRejected, formErrorsOf, formValues, parseForm } from '../portal/forms.ts';
import type { DirectoryService } from '../scim/directory.service.ts';
import type { ConnectionService } from '../sso/connection.service.ts';
import type { DomainService } from '../sso/domain.service.ts';
import type { OidcSso } from '../sso/oidc-sso.ts';
import { acsUrl, type SamlSso, spEntityId } from '../sso/saml/saml-sso.ts';
import {
  DIRECTORY_PROVIDERS_GUIDES,
  directoryProvider,
  fillStep,
  GOOGLE_NO_SCIM,
  type SetupValue,
  SSO_PROVIDERS,
  type SsoProviderGuide,
  ssoProvider,
} from './providers.ts';
import { looksLikeSetupSecret, type SetupLinkService, setupLinkActor } from './setup-link.service.ts';
import type { SetupFeature, SetupLinkRow } from './setup-link.table.ts';

/** The browser a link is bound to: HttpOnly, SameSite=Lax, this link's pages only. */
const BINDING_COOKIE = 'tessera.setup';
/** Where the test sign-in comes back to: the link's secret, for 15 minutes, on /setup/tested only. */
const RETURN_COOKIE = 'tessera.setup_return';
const RETURN_TTL_MS = 15 * 60 * 1000;
const METADATA_MAX = 500_000;

export interface SetupPageDeps {
  publicUrl: string;
  setupLinks: SetupLinkService;
  connections: ConnectionService;
  domains: DomainService;
  directories: DirectoryService;
  saml: SamlSso;
  oidc: OidcSso;
  render: Render;
}

/** One request's view of its link: the link, its organization, the actor it acts as. */
interface SetupVisit {
  link: SetupLinkRow;
  orgName: string;
  actor: Actor;
  /** /t/<slug>/setup/<secret> */
  url: string;
  csrf: string;
}

/**
 * /t/<slug>/setup/<secret> — the pages a setup link opens for the customer's IT admin, no
 * account needed: domains, single sign-on with per-provider instructions and a test sign-in,
 * directory sync. The link's organization and features decide everything; nothing in a request
 * names another organization. Every POST is same-origin (the router's check), carries the form
 * token of this browser's binding, and comes from the bound browser; an unknown, expired,
 * revoked or foreign-browser link gets a page saying so and changes nothing.
 */
export function setupPages(deps: SetupPageDeps) {
  const router = new Router();

  // The secret is in the URL: no page of it tells another site where the browser came from.
  router.use(async (ctx: Context, next: Next) => {
    ctx.set('Referrer-Policy', 'no-referrer');
    await next();
  });

  const base = (ctx: Context) => `/t/${ctx.state.runtime.tenant.slug}/setup`;
  const tenantId = (ctx: Context): string => ctx.state.runtime.tenant.id;
  const slug = (ctx: Context): string => ctx.state.runtime.tenant.slug;
  const csrfOf = (binding: string) => sha256Hex(`setup-form:${binding}`);

  function message(ctx: Context, status: number, title: string, paragraphs: string[]) {
    renderPage(ctx, deps.render, 'message.njk', { title, paragraphs, referrerPolicy: 'no-referrer' }, status);
  }

  /** The link of the URL for this browser, or the page that says why not (and nothing changes). */
  async function visit(ctx: Context, feature?: SetupFeature): Promise<SetupVisit | undefined> {
    const secret = String(ctx.params.secret ?? '');
    const url = `${base(ctx)}/${secret}`;
    const cookie = ctx.cookies.get(BINDING_COOKIE);
    const entry = await deps.setupLinks.enter(tenantId(ctx), secret, cookie, { bind: ctx.method === 'GET' });
    switch (entry.kind) {
      case 'unknown':
        message(ctx, 404, 'This setup link does not work', ['Check that you copied the whole link. If it still does not open, ask for a new one.']);
        return undefined;
      case 'expired':
        message(ctx, 410, 'This setup link has expired', [`Ask ${entry.orgName} for a new one. Nothing was changed.`]);
        return undefined;
      case 'revoked':
        message(ctx, 410, 'This setup link was revoked', [`It no longer works. Ask ${entry.orgName} for a new one if you still need it. Nothing was changed.`]);
        return undefined;
      case 'maker_lost_rights':
        message(ctx, 410, 'This setup link no longer works', [
          `The person who made it can no longer set up ${entry.orgName}. Ask ${entry.orgName} for a new one. Nothing was changed.`,
        ]);
        return undefined;
      case 'other_browser':
        message(ctx, 409, 'This link was opened in another browser', [
          `A setup link works in the first browser that opens it, and only there. Go back to that browser, or ask ${entry.orgName} for a new one. Nothing was changed.`,
        ]);
        return undefined;
    }
    const binding = entry.bound ?? cookie!;
    if (entry.bound) {
      ctx.cookies.set(BINDING_COOKIE, entry.bound, {
        path: url,
        httpOnly: true,
        sameSite: 'lax',
        secure: ctx.secure,
        expires: entry.link.expires_at,
        overwrite: true,
      });
    }
    const v: SetupVisit = { link: entry.link, orgName: entry.orgName, actor: setupLinkActor(entry.link.id), url, csrf: csrfOf(binding) };
    if (feature && !v.link.features.includes(feature)) {
      message(ctx, 404, 'This link does not set that up', [`Ask ${v.orgName} for a link that includes it. Nothing was changed.`]);
      return undefined;
    }
    if (ctx.method === 'POST' && !constantTimeEqual(formField(ctx, '_csrf', 100), v.csrf)) {
      message(ctx, 403, 'This form has expired', ['Go back, reload the page and try again. Nothing was changed.']);
      return undefined;
    }
    if (ctx.method === 'POST') await deps.setupLinks.touch(tenantId(ctx), v.link.id);
    return v;
  }

  /** The steps this link sets up, in order, each done or not. */
  async function progress(ctx: Context, v: SetupVisit) {
    const f = v.link.features;
    const [domains, connection, directories] = await Promise.all([
      f.includes('domains') ? deps.domains.list(tenantId(ctx), v.link.org_id) : [],
      f.includes('sso') ? linkConnection(ctx, v) : undefined,
      f.includes('directory_sync') ? deps.directories.list(tenantId(ctx), slug(ctx), v.link.org_id) : [],
    ]);
    return [
      ...(f.includes('domains') ? [{ id: 'domains', name: 'Domains', done: domains.some((d) => d.verified) }] : []),
      ...(f.includes('sso') ? [{ id: 'sso', name: 'Single sign-on', done: Boolean(connection) }] : []),
      ...(f.includes('sso') ? [{ id: 'test', name: 'Test sign-in', done: v.link.last_test?.ok === true }] : []),
      ...(f.includes('directory_sync') ? [{ id: 'directory', name: 'Directory sync', done: directories.length > 0 }] : []),
    ];
  }

  async function page(ctx: Context, v: SetupVisit, step: string, template: string, context: Record<string, unknown>, status = 200) {
    renderPage(
      ctx,
      deps.render,
      template,
      {
        title: `Set up ${v.orgName}`,
        wide: true,
        script: 'portal.js',
        referrerPolicy: 'no-referrer',
        orgName: v.orgName,
        setupUrl: v.url,
        csrf: v.csrf,
        step,
        steps: await progress(ctx, v),
        expiresAt: v.link.expires_at.toISOString(),
        errors: {},
        values: {},
        ...context,
      },
      status,
    );
  }

  /** The connection the link sets up, when it exists. */
  async function linkConnection(ctx: Context, v: SetupVisit) {
    const { id, exists } = await deps.setupLinks.connectionIdFor(tenantId(ctx), v.link);
    return exists ? deps.connections.present(slug(ctx), await deps.connections.get(tenantId(ctx), v.link.org_id, id)) : undefined;
  }

  // ── the return of a test sign-in ─────────────────────────────────────────
  router.get('/tested', (ctx) => {
    const secret = ctx.cookies.get(RETURN_COOKIE) ?? '';
    ctx.cookies.set(RETURN_COOKIE, '', { path: `${base(ctx)}/tested`, httpOnly: true, sameSite: 'lax', secure: ctx.secure, maxAge: 0, overwrite: true });
    if (!looksLikeSetupSecret(secret))
      return message(ctx, 200, 'The test sign-in is over', [
        'Go back to the setup page in the browser where you started it to see what your identity provider sent.',
      ]);
    ctx.status = 303;
    ctx.redirect(`${base(ctx)}/${secret}/test`);
  });

  // ── overview ─────────────────────────────────────────────────────────────
  router.get('/:secret', async (ctx) => {
    const v = await visit(ctx);
    if (!v) return;
    await page(ctx, v, '', 'setup/overview.njk', {});
  });

  // ── domains ──────────────────────────────────────────────────────────────
  async function domainsPage(ctx: Context, v: SetupVisit, extra: { values?: Record<string, string>; errors?: FormErrors; notice?: string } = {}, status = 200) {
    const domains = await deps.domains.list(tenantId(ctx), v.link.org_id);
    await page(ctx, v, 'domains', 'setup/domains.njk', { domains, formError: extra.errors?._form, ...extra }, status);
  }

  router.get('/:secret/domains', async (ctx) => {
    const v = await visit(ctx, 'domains');
    if (v) await domainsPage(ctx, v);
  });

  router.post('/:secret/domains', async (ctx) => {
    const v = await visit(ctx, 'domains');
    if (!v) return;
    const values = formValues(ctx, ['domain']);
    try {
      const { domain } = parseForm(AddDomain, { domain: values.domain });
      await deps.domains.add(tenantId(ctx), v.actor, v.link.org_id, domain);
      await domainsPage(ctx, v, { notice: `${domain} added. Publish the TXT record below, then choose Verify.` });
    } catch (err) {
      await domainsPage(ctx, v, { values, errors: formErrorsOf(err) }, 422);
    }
  });

  router.post('/:secret/domains/:domain/verify', async (ctx) => {
    const v = await visit(ctx, 'domains');
    if (!v) return;
    const domain = String(ctx.params.domain).toLowerCase();
    if (domain.length > 253 || !/^[a-z0-9.-]+$/.test(domain)) throw NotFound('The organization has no such domain.');
    try {
      await deps.domains.verify(tenantId(ctx), v.actor, v.link.org_id, domain);
      await domainsPage(ctx, v, { notice: `${domain} is verified.` });
    } catch (err) {
      await domainsPage(ctx, v, { errors: formErrorsOf(err) }, 409);
    }
  });

  // ── single sign-on ───────────────────────────────────────────────────────
  router.get('/:secret/sso', async (ctx) => {
    const v = await visit(ctx, 'sso');
    if (!v) return;
    await page(ctx, v, 'sso', 'setup/sso.njk', { providers: SSO_PROVIDERS, connection: await linkConnection(ctx, v) });
  });

  /** The values the IdP is given, for the connection the link sets up (it may not exist yet). */
  async function ssoValues(ctx: Context, v: SetupVisit): Promise<Record<SetupValue, string>> {
    const { id } = await deps.setupLinks.connectionIdFor(tenantId(ctx), v.link);
    return {
      acs_url: acsUrl(deps.publicUrl, slug(ctx), id),
      entity_id: spEntityId(deps.publicUrl, slug(ctx), id),
      metadata_url: spEntityId(deps.publicUrl, slug(ctx), id),
      redirect_uri: deps.connections.redirectUri(slug(ctx), id),
      scim_base_url: '',
    };
  }

  async function providerPage(
    ctx: Context,
    v: SetupVisit,
    provider: SsoProviderGuide,
    extra: { values?: Record<string, string>; errors?: FormErrors; notice?: string } = {},
    status = 200,
  ) {
    const filled = await ssoValues(ctx, v);
    const connection = await linkConnection(ctx, v);
    await page(
      ctx,
      v,
      'sso',
      'setup/sso-provider.njk',
      {
        provider,
        instructions: provider.steps.map((s) => fillStep(s, filled)),
        connection,
        mismatch: connection && connection.type !== provider.protocol ? connection.type.toUpperCase() : undefined,
        formError: extra.errors?._form,
        ...extra,
        values: extra.values ?? { name: connection?.name ?? provider.name },
      },
      status,
    );
  }

  const providerOf = (ctx: Context) => {
    const provider = ssoProvider(String(ctx.params.provider));
    if (!provider) throw NotFound('No such identity provider here.');
    return provider;
  };

  router.get('/:secret/sso/:provider', async (ctx) => {
    const v = await visit(ctx, 'sso');
    if (v) await providerPage(ctx, v, providerOf(ctx));
  });

  /**
   * Creates the organization's connection (with the id its URLs were shown with) or changes it.
   * Only the IdP's own settings come from the form: roles, provisioning and the rest stay what
   * the organization set (a new connection: member, just-in-time on).
   */
  router.post('/:secret/sso/:provider', async (ctx) => {
    const v = await visit(ctx, 'sso');
    if (!v) return;
    const provider = providerOf(ctx);
    const values = {
      ...formValues(ctx, ['name', 'metadata_url', 'issuer_url', 'client_id', 'client_secret', 'idp_entity_id', 'idp_sso_url']),
      ...formValues(ctx, ['metadata_xml', 'idp_certificate'], METADATA_MAX),
    };
    const given = (k: string) => (values[k] ? { [k]: values[k] } : {});
    const idp =
      provider.protocol === 'oidc'
        ? { ...given('issuer_url'), ...given('client_id'), ...given('client_secret') }
        : {
            ...given('metadata_url'),
            ...given('metadata_xml'),
            ...given('idp_entity_id'),
            ...given('idp_sso_url'),
            ...(values.idp_certificate ? { idp_certificates: [values.idp_certificate] } : {}),
          };
    try {
      const { id, exists } = await deps.setupLinks.connectionIdFor(tenantId(ctx), v.link);
      if (exists) {
        const current = await deps.connections.get(tenantId(ctx), v.link.org_id, id);
        if (current.type !== provider.protocol)
          throw new FormRejected({
            _form: `${v.orgName} already has a ${current.type.toUpperCase()} connection: choose a ${current.type.toUpperCase()} provider, or ask ${v.orgName} to remove it first.`,
          });
        const patch = parseForm(UpdateConnection, { ...given('name'), ...idp });
        await deps.connections.update(tenantId(ctx), v.actor, v.link.org_id, id, patch);
      } else {
        if (
          provider.protocol === 'saml' &&
          !values.metadata_url &&
          !values.metadata_xml &&
          !(values.idp_entity_id && values.idp_sso_url && values.idp_certificate)
        )
          throw new FormRejected({
            _form: `Give ${provider.bringBack}.`,
            metadata_url: 'Give the metadata URL, the metadata XML, or the fields by hand.',
          });
        const input = parseForm(CreateConnection, { type: provider.protocol, name: values.name || provider.name, ...idp });
        await deps.connections.create(tenantId(ctx), v.actor, v.link.org_id, input, { id });
      }
      await providerPage(ctx, v, provider, {
        notice: `Saved. Now test it: sign in once through your identity provider. Real sign-ins start once an owner of ${v.orgName} turns the connection on.`,
      });
    } catch (err) {
      await providerPage(ctx, v, provider, { values: { ...values, client_secret: '' }, errors: formErrorsOf(err) }, 422);
    }
  });

  // ── test sign-in ─────────────────────────────────────────────────────────
  async function testPage(ctx: Context, v: SetupVisit, extra: { error?: string } = {}, status = 200) {
    const connection = await linkConnection(ctx, v);
    const test = v.link.last_test;
    // A refusal that came before the answer named its request (say, an unsolicited response)
    // is only on the connection: show it when it is newer than this test.
    const laterError =
      test && !test.finished_at && connection?.last_error && connection.last_error_at && connection.last_error_at > test.started_at
        ? connection.last_error
        : undefined;
    await page(ctx, v, 'test', 'setup/test.njk', { connection, test, laterError, startError: extra.error }, status);
  }

  router.get('/:secret/test', async (ctx) => {
    const v = await visit(ctx, 'sso');
    if (v) await testPage(ctx, v);
  });

  /** A real sign-in through the connection, in this browser; its answer comes back to the test page. */
  router.post('/:secret/test', async (ctx) => {
    const v = await visit(ctx, 'sso');
    if (!v) return;
    const { id, exists } = await deps.setupLinks.connectionIdFor(tenantId(ctx), v.link);
    if (!exists) return testPage(ctx, v, { error: 'Set up single sign-on first.' }, 409);
    const conn = await deps.connections.get(tenantId(ctx), v.link.org_id, id);
    // A connection a link set up is off until an owner turns it on; its test sign-in is how the
    // IT admin checks it first, so it runs whether the connection is on or off.
    const binding = { interactionUid: null, invitationId: null, setupLinkId: v.link.id };
    let to: string;
    try {
      to = conn.type === 'saml' ? await deps.saml.start(conn, slug(ctx), binding) : await deps.oidc.start(conn, slug(ctx), binding);
    } catch (err) {
      const reason = `could not start the sign-in: ${(err as Error).message}`;
      await deps.connections.recordError(tenantId(ctx), conn.id, reason);
      return testPage(ctx, v, { error: `The sign-in could not start: ${(err as Error).message}` }, 422);
    }
    await deps.setupLinks.testStarted(tenantId(ctx), v.link.id, conn.id);
    ctx.cookies.set(RETURN_COOKIE, String(ctx.params.secret), {
      path: `${base(ctx)}/tested`,
      httpOnly: true,
      sameSite: 'lax',
      secure: ctx.secure,
      maxAge: RETURN_TTL_MS,
      overwrite: true,
    });
    ctx.status = 303;
    ctx.redirect(to);
  });

  // ── directory sync ───────────────────────────────────────────────────────
  async function directoryPage(ctx: Context, v: SetupVisit, extra: Record<string, unknown> = {}, status = 200) {
    const directories = await deps.directories.list(tenantId(ctx), slug(ctx), v.link.org_id);
    await page(ctx, v, 'directory', 'setup/directory.njk', { providers: DIRECTORY_PROVIDERS_GUIDES, directories, ...extra }, status);
  }

  router.get('/:secret/directory', async (ctx) => {
    const v = await visit(ctx, 'directory_sync');
    if (v) await directoryPage(ctx, v);
  });

  const directoryProviderOf = (ctx: Context) => {
    const provider = directoryProvider(String(ctx.params.provider));
    if (!provider) throw NotFound('No such directory here.');
    return provider;
  };

  /** The provider's steps with the directory's base URL, and its token when it was just made. */
  async function directoryProviderPage(
    ctx: Context,
    v: SetupVisit,
    provider: ReturnType<typeof directoryProviderOf>,
    made?: { scim_base_url: string; bearer_token: string; name: string },
  ) {
    await page(ctx, v, 'directory', 'setup/directory-provider.njk', {
      provider,
      noScim: provider.pushes ? undefined : GOOGLE_NO_SCIM,
      made,
      instructions: provider.steps.map((s) => fillStep(s, { scim_base_url: made?.scim_base_url ?? '(shown once you create the directory)' })),
    });
  }

  router.get('/:secret/directory/:provider', async (ctx) => {
    const v = await visit(ctx, 'directory_sync');
    if (v) await directoryProviderPage(ctx, v, directoryProviderOf(ctx));
  });

  /** A new directory; its token is on this answer only. Roles stay the defaults (member; never owner). */
  router.post('/:secret/directory/:provider', async (ctx) => {
    const v = await visit(ctx, 'directory_sync');
    if (!v) return;
    const provider = directoryProviderOf(ctx);
    if (!provider.pushes) return directoryProviderPage(ctx, v, provider);
    const made = await deps.directories.create(tenantId(ctx), slug(ctx), v.actor, v.link.org_id, { name: provider.name, provider: provider.id });
    await directoryProviderPage(ctx, v, provider, made);
  });

  router.post('/:secret/directories/:directoryId/rotate', async (ctx) => {
    const v = await visit(ctx, 'directory_sync');
    if (!v) return;
    const id = String(ctx.params.directoryId);
    if (!isUuid(id)) throw NotFound('The organization has no such directory.');
    const made = await deps.directories.rotateToken(tenantId(ctx), slug(ctx), v.actor, v.link.org_id, id);
    await directoryProviderPage(ctx, v, directoryProvider(made.provider) ?? directoryProvider('generic')!, made);
  });

  return router;
}
