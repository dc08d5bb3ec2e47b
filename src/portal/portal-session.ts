import { createHash, createHmac } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { ACR, type Missing, type SessionFacts } from '../auth-policy/policy.ts';
import type { Render } from '../base/views.ts';
import { constantTimeEqual, deriveKey, randomSecret } from '../crypto/secrets.ts';
import { formField, renderPage } from '../http/pages.ts';
import { PORTAL_CLIENT, portalRedirectUri } from '../oidc/client.service.ts';
import type { UserRow } from '../users/user.repo.ts';
import type { UserService } from '../users/user.service.ts';
import { safeReturnTo } from './return-to.ts';

/**
 * Signing in to the portal and account pages. The portal is an OIDC client of its own tenant
 * (`tessera:portal`, a public client with PKCE): it sends the browser through the tenant's
 * authorization endpoint like any app, and redeems the code in-process — same checks as the
 * token endpoint (client, redirect URI, PKCE S256, single use, expiry) without a network hop to
 * its own public URL. Its session is a signed cookie naming the grant: revoking the grant (sign
 * out, password change or reset, "sign out of this session") ends the portal session at once.
 */

const SESSION_COOKIE = 'tessera.portal';
const LOGIN_COOKIE = 'tessera.portal.login';
const SESSION_SECONDS = 8 * 3600;
const LOGIN_SECONDS = 10 * 60;

export interface Viewer {
  user: UserRow;
  grantId: string;
  /** How this portal session signed in, judged by the organizations' policies (OrgTokens.judgeSignIn). */
  signIn: SessionFacts;
  /** Bound to the session; every portal and account form carries it (see checkCsrf). */
  csrf: string;
}

interface SessionCookie {
  g: string; // grant id
  u: string; // user id
  c: string; // csrf token
  // How the sign-in was made, from the authorization code: amr, acr and auth_time (seconds).
  amr?: string[];
  acr?: string;
  at?: number;
  exp: number;
}

interface LoginCookie {
  state: string;
  verifier: string;
  returnTo: string;
  exp: number;
}

/** HMAC-signed JSON with a key of this tenant and purpose: one tenant's cookie means nothing at another. */
class SignedCookie<T extends { exp: number }> {
  /** Derived once per tenant: HKDF on every request showed in the profile. */
  private readonly keys = new Map<string, Buffer>();

  constructor(
    private readonly name: string,
    private readonly purpose: string,
    private readonly encryptionKey: Buffer,
  ) {}

  private mac(tenantId: string, body: string) {
    let key = this.keys.get(tenantId);
    if (!key) {
      key = deriveKey(this.encryptionKey, `${this.purpose}:${tenantId}`);
      if (this.keys.size > 10_000) this.keys.clear();
      this.keys.set(tenantId, key);
    }
    return createHmac('sha256', key).update(body).digest('base64url');
  }

  read(ctx: Context): T | undefined {
    const raw = ctx.cookies.get(this.name);
    if (!raw) return undefined;
    const [body, mac] = raw.split('.');
    if (!body || !mac || !constantTimeEqual(mac, this.mac(ctx.state.runtime.tenant.id, body))) return undefined;
    try {
      const value = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as T;
      return value.exp > Date.now() / 1000 ? value : undefined;
    } catch {
      return undefined;
    }
  }

  write(ctx: Context, value: T, path: string) {
    const body = Buffer.from(JSON.stringify(value)).toString('base64url');
    ctx.cookies.set(this.name, `${body}.${this.mac(ctx.state.runtime.tenant.id, body)}`, {
      path,
      httpOnly: true,
      sameSite: 'lax',
      secure: ctx.secure,
      maxAge: (value.exp - Math.floor(Date.now() / 1000)) * 1000,
      overwrite: true,
    });
  }

  clear(ctx: Context, path: string) {
    ctx.cookies.set(this.name, '', { path, httpOnly: true, sameSite: 'lax', secure: ctx.secure, maxAge: 0, overwrite: true });
  }
}

const tenantPath = (ctx: Context) => `/t/${ctx.state.runtime.tenant.slug}/`;

/**
 * Signing in again to meet what an organization's policy asks (`?step=` of the login route): a
 * second factor (acr_values: the sign-in asks for one, or walks a person without one through
 * setting it up), or a new sign-in (prompt=login: a fresh auth_time, another method, the
 * organization's SSO).
 */
const STEP_UP: Record<string, Record<string, string>> = {
  mfa: { acr_values: ACR.mfa },
  login: { prompt: 'login' },
};

/** The login link that signs in again as a policy's `missing` asks, and comes back to `returnTo`. */
export function stepUpUrl(ctx: Context, missing: Missing, returnTo: string): string {
  const step = missing === 'mfa' ? 'mfa' : 'login';
  return `${tenantPath(ctx)}portal/login?${new URLSearchParams({ step, return_to: returnTo })}`;
}

export class PortalSessions {
  private readonly session: SignedCookie<SessionCookie>;
  private readonly login: SignedCookie<LoginCookie>;

  constructor(
    encryptionKey: Buffer,
    private readonly users: UserService,
    private readonly render: Render,
  ) {
    this.session = new SignedCookie(SESSION_COOKIE, 'portal-session', encryptionKey);
    this.login = new SignedCookie(LOGIN_COOKIE, 'portal-login', encryptionKey);
  }

  /** GET /portal/login, /portal/callback, /portal/signed-out and POST /portal/logout. */
  routes() {
    const router = new Router();

    router.get('/login', (ctx) => {
      this.startSignIn(ctx, ctx.query.return_to, typeof ctx.query.step === 'string' && Object.hasOwn(STEP_UP, ctx.query.step) ? STEP_UP[ctx.query.step] : {});
    });

    router.get('/callback', async (ctx) => {
      const runtime = ctx.state.runtime;
      const pending = this.login.read(ctx);
      this.login.clear(ctx, `${tenantPath(ctx)}portal/`);
      const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
      if (!pending || !constantTimeEqual(state, pending.state))
        return this.failed(ctx, 'This sign-in link is stale or was opened in another browser. Start again.');
      // The provider's own refusal (state matched, so it is ours): e.g. not a member of the
      // organization whose sign-in page this started from. A cancel says just that.
      if (typeof ctx.query.error === 'string') {
        const why = typeof ctx.query.error_description === 'string' ? ctx.query.error_description.slice(0, 300) : '';
        return this.failed(
          ctx,
          ctx.query.error === 'access_denied' && why && !/cancelled/.test(why) ? `The sign-in was refused: ${why}` : 'The sign-in was cancelled.',
        );
      }
      const code = typeof ctx.query.code === 'string' ? await runtime.provider.AuthorizationCode.find(ctx.query.code) : undefined;
      const challenge = createHash('sha256').update(pending.verifier).digest('base64url');
      if (code && (code as { consumed?: unknown }).consumed) {
        // A code used twice may have been stolen: end what it started (RFC 6749 §4.1.2).
        if (code.grantId) await (await runtime.provider.Grant.find(code.grantId))?.destroy();
        return this.failed(ctx, 'The sign-in could not be completed. Start again.');
      }
      if (
        !code ||
        code.clientId !== PORTAL_CLIENT ||
        code.redirectUri !== portalRedirectUri(runtime.issuer) ||
        code.codeChallengeMethod !== 'S256' ||
        !constantTimeEqual(String(code.codeChallenge), challenge) ||
        !code.grantId ||
        !code.accountId
      ) {
        return this.failed(ctx, 'The sign-in could not be completed. Start again.');
      }
      await code.consume();
      const signedIn = code as { amr?: unknown; acr?: unknown; authTime?: unknown };
      this.session.write(
        ctx,
        {
          g: code.grantId,
          u: code.accountId,
          c: randomSecret(24),
          amr: Array.isArray(signedIn.amr) ? signedIn.amr.filter((v): v is string => typeof v === 'string').slice(0, 10) : [],
          ...(typeof signedIn.acr === 'string' ? { acr: signedIn.acr } : {}),
          ...(typeof signedIn.authTime === 'number' ? { at: signedIn.authTime } : {}),
          exp: Math.floor(Date.now() / 1000) + SESSION_SECONDS,
        },
        tenantPath(ctx),
      );
      ctx.redirect(pending.returnTo);
    });

    /** Ends the portal's grant and the tenant's browser session (oidc-provider asks to confirm). */
    router.post('/logout', async (ctx) => {
      const viewer = await this.viewer(ctx);
      if (viewer && this.csrfOk(ctx, viewer)) {
        const grant = await ctx.state.runtime.provider.Grant.find(viewer.grantId);
        await grant?.destroy();
      }
      this.session.clear(ctx, tenantPath(ctx));
      const { issuer } = ctx.state.runtime;
      ctx.redirect(`${issuer}/session/end?${new URLSearchParams({ client_id: PORTAL_CLIENT, post_logout_redirect_uri: `${issuer}/portal/signed-out` })}`);
    });

    router.get('/signed-out', (ctx) => {
      renderPage(ctx, this.render, 'message.njk', {
        title: 'Signed out',
        paragraphs: ['You are signed out.'],
        link: { href: `${tenantPath(ctx)}portal/organizations`, text: 'Sign in again' },
      });
    });

    return router;
  }

  /**
   * Sends the browser to the tenant's authorization endpoint as the portal, coming back to
   * `returnTo` (only the tenant's own portal and account pages; anything else is the portal's
   * home). `params` are added to the request: a step-up, or an organization's own sign-in.
   */
  startSignIn(ctx: Context, returnTo: unknown, params: Record<string, string> = {}) {
    const { issuer } = ctx.state.runtime;
    const state = randomSecret(24);
    const verifier = randomSecret(32);
    this.login.write(
      ctx,
      { state, verifier, returnTo: safeReturnTo(ctx.state.runtime.tenant.slug, returnTo), exp: Math.floor(Date.now() / 1000) + LOGIN_SECONDS },
      `${tenantPath(ctx)}portal/`,
    );
    const url = new URL(`${issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: PORTAL_CLIENT,
      response_type: 'code',
      redirect_uri: portalRedirectUri(issuer),
      scope: 'openid email profile',
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      ...params,
    }).toString();
    ctx.redirect(url.href);
  }

  private failed(ctx: Context, message: string) {
    renderPage(
      ctx,
      this.render,
      'message.njk',
      { title: 'Sign-in failed', paragraphs: [message], link: { href: `${tenantPath(ctx)}portal/login`, text: 'Sign in' } },
      400,
    );
  }

  /** The signed-in user of this request, when the cookie is good and its grant still lives. */
  async viewer(ctx: Context): Promise<Viewer | undefined> {
    if (ctx.state.viewer) return ctx.state.viewer;
    const cookie = this.session.read(ctx);
    if (!cookie) return undefined;
    const runtime = ctx.state.runtime;
    const grant = await runtime.provider.Grant.find(cookie.g);
    if (!grant || grant.accountId !== cookie.u || grant.clientId !== PORTAL_CLIENT) return undefined;
    const user = await this.users.find(runtime.tenant.id, cookie.u);
    if (!user || user.disabled) return undefined;
    // A cookie from before sign-in facts were kept shows none: a policy asking anything asks to sign in again.
    const viewer: Viewer = { user, grantId: cookie.g, csrf: cookie.c, signIn: { amr: cookie.amr ?? [], acr: cookie.acr, authTime: cookie.at } };
    ctx.state.viewer = viewer;
    return viewer;
  }

  private csrfOk(ctx: Context, viewer: Viewer) {
    return constantTimeEqual(formField(ctx, '_csrf', 100), viewer.csrf);
  }

  /**
   * Guard of the portal and account pages: no session → to sign-in (and back here after). Every
   * POST must carry the session's CSRF token — on top of the same-origin check every form route has.
   */
  requireViewer() {
    return async (ctx: Context, next: Next) => {
      const viewer = await this.viewer(ctx);
      if (!viewer) {
        const back = ctx.method === 'GET' ? ctx.originalUrl : undefined;
        ctx.redirect(`${tenantPath(ctx)}portal/login${back ? `?${new URLSearchParams({ return_to: back })}` : ''}`);
        return;
      }
      if (ctx.method === 'POST' && !this.csrfOk(ctx, viewer)) {
        renderPage(
          ctx,
          this.render,
          'message.njk',
          { title: 'Form expired', paragraphs: ['This form was opened before you last signed in. Go back, reload the page and try again.'] },
          403,
        );
        return;
      }
      ctx.state.viewer = viewer;
      return next();
    };
  }
}
