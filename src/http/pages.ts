import type { Context } from 'koa';
import type { Render } from '../base/views.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import { parseEmail } from '../users/email-address.ts';

/**
 * Our pages load only our stylesheet and script; images may come from https (tenant and
 * organization logos). No inline script can run, whatever a template gets wrong. No form-action:
 * a sign-in form's redirect chain ends at the app's own origin, which Chromium would refuse.
 */
export const PAGE_CSP = "default-src 'self'; img-src 'self' https: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** Renders a server page of the tenant in `ctx.state.runtime`; never cached (pages carry one-time state). */
export function renderPage(ctx: Context, render: Render, template: string, context: Record<string, unknown>, status = 200) {
  const { tenant } = ctx.state.runtime;
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Security-Policy', PAGE_CSP);
  ctx.body = render(template, { tenantName: tenant.name, tenantLogo: effectiveSettings(tenant.settings).logo_url, base: `/t/${tenant.slug}`, ...context });
}

/** A string field of a urlencoded form, trimmed and cut to `max` characters ('' when absent). */
export function formField(ctx: Context, name: string, max = 256, trim = true): string {
  const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
  const v = body[name];
  if (typeof v !== 'string') return '';
  return (trim ? v.trim() : v).slice(0, max);
}

/** Whether a typed email is one the email rule accepts (users/email-address.ts). */
export const looksLikeEmail = (s: string) => parseEmail(s).ok;

/** What a page says about a typed email the email rule refuses, or undefined when it accepts it. */
export function emailFieldError(s: string): string | undefined {
  if (!s.trim()) return 'Enter your email address.';
  const parsed = parseEmail(s);
  return parsed.ok ? undefined : `Enter a valid email address: this one ${parsed.problem}.`;
}
