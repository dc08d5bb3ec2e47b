import type { Context } from 'koa';
import { decrypt, deriveKey, encrypt } from '../crypto/secrets.ts';

const COOKIE = 'tessera_shown_once';
const LIFETIME_SECONDS = 300;

/**
 * A secret the portal shows exactly once (a directory's bearer token) across a post/redirect/get:
 * the form's answer puts it in a short-lived cookie, encrypted and bound to the tenant, the viewer
 * and what it belongs to, scoped to the page that shows it; that page takes it and clears the
 * cookie. Reloading the page then shows it no more, and a reload never re-posts the form (which
 * would make a second directory or rotate again). Nothing of the secret is kept on the server.
 */
export class ShownOnce {
  private readonly key: Buffer;

  constructor(encryptionKey: Buffer) {
    this.key = deriveKey(encryptionKey, 'portal-shown-once');
  }

  private aad(ctx: Context, subject: string) {
    return `${ctx.state.runtime.tenant.id}:${ctx.state.viewer.user.id}:${subject}`;
  }

  put(ctx: Context, path: string, subject: string, secret: string) {
    const exp = Math.floor(Date.now() / 1000) + LIFETIME_SECONDS;
    ctx.cookies.set(COOKIE, encrypt(this.key, JSON.stringify({ secret, exp }), this.aad(ctx, subject)), {
      path,
      httpOnly: true,
      sameSite: 'strict',
      secure: ctx.secure,
      maxAge: LIFETIME_SECONDS * 1000,
      overwrite: true,
    });
  }

  /** The secret for `subject`, if this page has one waiting; the cookie is cleared either way. */
  take(ctx: Context, path: string, subject: string): string | undefined {
    const sealed = ctx.cookies.get(COOKIE);
    if (!sealed) return undefined;
    ctx.cookies.set(COOKIE, '', { path, httpOnly: true, sameSite: 'strict', secure: ctx.secure, maxAge: 0, overwrite: true });
    try {
      const { secret, exp } = JSON.parse(decrypt(this.key, sealed, this.aad(ctx, subject))) as { secret: string; exp: number };
      return exp > Date.now() / 1000 && typeof secret === 'string' ? secret : undefined;
    } catch {
      return undefined;
    }
  }
}
