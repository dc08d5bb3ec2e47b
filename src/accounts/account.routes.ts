import Router from '@koa/router';
import type { Context } from 'koa';
import type { Render } from '../base/views.ts';
import { emailFieldError, formField, renderPage } from '../http/pages.ts';
import { type AccountService, PasswordRejected } from './account.service.ts';
import type { BruteForce } from './brute-force.ts';

/**
 * Self-service pages under /t/<slug>/account: forgot/reset password and email verification.
 * Answers never depend on whether an email has an account.
 */
export function accountRoutes(deps: { accounts: AccountService; bruteForce: BruteForce; render: Render }) {
  const router = new Router();
  const { accounts, render } = deps;
  const base = (ctx: Context) => `/t/${ctx.state.runtime.tenant.slug}/account`;
  const page = (ctx: Context, template: string, context: Record<string, unknown>, status?: number) => renderPage(ctx, render, template, context, status);

  const expiredLink = (ctx: Context, what: 'reset' | 'verify') =>
    page(
      ctx,
      'message.njk',
      {
        title: 'This link no longer works',
        paragraphs: ['It was already used, or it has expired. Links work once, for a limited time.'],
        link:
          what === 'reset'
            ? { href: `${base(ctx)}/forgot-password`, text: 'Send me a new reset link' }
            : { href: `${base(ctx)}/verify-email/resend`, text: 'Send me a new confirmation link' },
      },
      410,
    );

  /** Mail-sending forms are limited per address, so they can't be used to flood a mailbox. */
  async function mailAllowed(ctx: Context) {
    return deps.bruteForce.allowMailRequest(ctx.state.runtime.tenant.id, ctx.ip);
  }

  router.get('/forgot-password', (ctx) =>
    page(ctx, 'forgot-password.njk', { title: 'Reset your password', action: `${base(ctx)}/forgot-password`, email: '' }),
  );
  router.post('/forgot-password', async (ctx) => {
    const email = formField(ctx, 'email', 320);
    const emailError = emailFieldError(email);
    if (emailError) {
      return page(ctx, 'forgot-password.njk', { title: 'Reset your password', action: `${base(ctx)}/forgot-password`, email, error: emailError }, 400);
    }
    if (!(await mailAllowed(ctx))) {
      return page(ctx, 'message.njk', { title: 'Too many requests', paragraphs: ['Please wait a few minutes before asking again.'] }, 429);
    }
    await accounts.requestPasswordReset(ctx.state.runtime.tenant.id, email);
    page(ctx, 'message.njk', {
      title: 'Check your inbox',
      paragraphs: [`If ${email} has an account, we have sent it a link to choose a new password. The link expires in 30 minutes.`],
    });
  });

  router.get('/reset-password/:token', async (ctx) => {
    const token = String(ctx.params.token).slice(0, 100);
    if (!(await accounts.resetLinkIsLive(ctx.state.runtime.tenant.id, token))) return expiredLink(ctx, 'reset');
    page(ctx, 'reset-password.njk', { title: 'Choose a new password', action: `${base(ctx)}/reset-password/${encodeURIComponent(token)}` });
  });
  router.post('/reset-password/:token', async (ctx) => {
    const token = String(ctx.params.token).slice(0, 100);
    const password = formField(ctx, 'password', 1000, false);
    try {
      const outcome = await accounts.resetPassword(ctx.state.runtime.tenant.id, token, password);
      if (outcome === 'invalid') return expiredLink(ctx, 'reset');
    } catch (err) {
      if (!(err instanceof PasswordRejected)) throw err;
      return page(
        ctx,
        'reset-password.njk',
        { title: 'Choose a new password', action: `${base(ctx)}/reset-password/${encodeURIComponent(token)}`, error: err.message },
        400,
      );
    }
    page(ctx, 'message.njk', {
      title: 'Your password was changed',
      paragraphs: ['You have been signed out everywhere. Sign in again from your application with the new password.'],
    });
  });

  router.get('/verify-email/resend', (ctx) =>
    page(ctx, 'resend-verification.njk', { title: 'Confirm your email', action: `${base(ctx)}/verify-email/resend`, email: '' }),
  );
  router.post('/verify-email/resend', async (ctx) => {
    const email = formField(ctx, 'email', 320);
    const emailError = emailFieldError(email);
    if (emailError) {
      return page(ctx, 'resend-verification.njk', { title: 'Confirm your email', action: `${base(ctx)}/verify-email/resend`, email, error: emailError }, 400);
    }
    if (!(await mailAllowed(ctx))) {
      return page(ctx, 'message.njk', { title: 'Too many requests', paragraphs: ['Please wait a few minutes before asking again.'] }, 429);
    }
    await accounts.requestVerification(ctx.state.runtime.tenant.id, email);
    page(ctx, 'message.njk', {
      title: 'Check your inbox',
      paragraphs: [`If ${email} has an account that still needs confirming, we have sent it a new link.`],
    });
  });

  router.get('/verify-email/:token', async (ctx) => {
    const outcome = await accounts.verifyEmail(ctx.state.runtime.tenant.id, String(ctx.params.token).slice(0, 100));
    if (outcome === 'invalid') return expiredLink(ctx, 'verify');
    page(ctx, 'message.njk', { title: 'Email confirmed', paragraphs: ['Thank you. You can now sign in from your application.'] });
  });

  return router;
}
