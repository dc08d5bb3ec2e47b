import type { Context } from 'koa';
import type { z } from 'zod';
import { AppError } from '../base/errors.ts';
import { fieldErrors } from '../base/validate.ts';
import type { Render } from '../base/views.ts';
import { formField, renderPage } from '../http/pages.ts';
import type { Viewer } from './portal-session.ts';

/** Field name → message, shown next to the field; `_form` is for the page's error banner. */
export type FormErrors = Record<string, string>;

export class FormRejected extends Error {
  constructor(readonly errors: FormErrors) {
    super(Object.values(errors).join(' '));
  }
}

/** The posted fields, trimmed; an empty field is "not given". */
export function formValues(ctx: Context, names: readonly string[], max = 2000): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, formField(ctx, n, max)]));
}

/**
 * Validates form input with the Admin API's own schema — one rule per field, whichever door the
 * change comes through. Throws FormRejected with a message per field.
 */
export function parseForm<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors: FormErrors = {};
  for (const e of fieldErrors(result.error)) errors[e.field.split('.')[0] || '_form'] ??= sentence(e.message);
  throw new FormRejected(errors);
}

const sentence = (m: string) => (m ? m[0]!.toUpperCase() + m.slice(1) + (/[.!?]$/.test(m) ? '' : '.') : m);

/**
 * A service's refusal (409 duplicate slug, 422 last owner, 429 send limit …) as form errors;
 * anything else — 404 for someone else's id, or a real fault — goes on to the error boundary.
 */
export function formErrorsOf(err: unknown): FormErrors {
  if (err instanceof FormRejected) return err.errors;
  if (err instanceof AppError && (err.status === 409 || err.status === 422 || err.status === 400 || err.status === 429)) {
    const errors: FormErrors = {};
    for (const e of err.errors ?? []) errors[e.field] ??= sentence(`${e.field.replace(/_/g, ' ')} ${e.message}`);
    errors._form = err.detail;
    return errors;
  }
  throw err;
}

/** Renders a portal or account page: the viewer, their CSRF token and the navigation come along. */
export function portalPage(render: Render) {
  return (ctx: Context, template: string, context: Record<string, unknown>, status = 200) => {
    const viewer: Viewer | undefined = ctx.state.viewer;
    renderPage(
      ctx,
      render,
      template,
      { viewer: viewer?.user, csrf: viewer?.csrf, policyReminder: ctx.state.policyReminder, errors: {}, values: {}, ...context },
      status,
    );
  };
}

/** Post/redirect/get: the page after a change says what happened through a short code in the URL. */
export function redirectWithNotice(ctx: Context, url: string, notice: string) {
  ctx.status = 303;
  ctx.redirect(`${url}${url.includes('?') ? '&' : '?'}done=${encodeURIComponent(notice)}`);
}

/** The notice for `?done=<code>` — only known codes are shown, so a link can't put words on our page. */
export function noticeFor(ctx: Context, notices: Record<string, string>): string | undefined {
  const code = typeof ctx.query.done === 'string' ? ctx.query.done : '';
  return Object.hasOwn(notices, code) ? notices[code] : undefined;
}
