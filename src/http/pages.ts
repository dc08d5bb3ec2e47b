import type { Context } from 'koa';
import type { TenantRuntime } from '../tenants/tenant-runtime.ts';
import type { Render } from '../views.ts';

/** Renders a server page of the tenant in `ctx.state.runtime`; never cached (pages carry one-time state). */
export function renderPage(ctx: Context, render: Render, template: string, context: Record<string, unknown>, status = 200) {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = render(template, { tenantName: (ctx.state.runtime as TenantRuntime).tenant.name, ...context });
}

/** A string field of a urlencoded form, trimmed and cut to `max` characters ('' when absent). */
export function formField(ctx: Context, name: string, max = 256, trim = true): string {
  const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
  const v = body[name];
  if (typeof v !== 'string') return '';
  return (trim ? v.trim() : v).slice(0, max);
}

export const looksLikeEmail = (s: string) => s.length <= 254 && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s);
