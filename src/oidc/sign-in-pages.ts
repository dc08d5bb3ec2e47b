import type { Context } from 'koa';
import type { Render } from '../base/views.ts';
import { renderPage } from '../http/pages.ts';

/**
 * The page of a sign-in stopped because the tenant asks for a verified email and this account's
 * is not (a new confirmation link was just mailed): the same page whatever proved the account
 * (a password, a passkey).
 */
export function confirmEmailFirstPage(ctx: Context, render: Render, email: string, backToSignIn: string) {
  renderPage(
    ctx,
    render,
    'message.njk',
    {
      title: 'Confirm your email first',
      paragraphs: [`We have sent a confirmation link to ${email}. Open it, then sign in again.`],
      link: { href: backToSignIn, text: 'Back to sign in' },
    },
    403,
  );
}
