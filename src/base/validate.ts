import type { Context } from 'koa';
import { z } from 'zod';
import { BadRequest, type FieldError, UnsupportedMediaType, ValidationFailed } from './errors.ts';

/** zod's issues as the contract's `errors: [{ field, message }]`. */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length ? `${issue.path.join('.')}.` : '';
      return { field: prefix + issue.keys.join(','), message: `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}` };
    }
    return { field: issue.path.join('.') || '(body)', message: issue.message };
  });
}

/** Validates a JSON request body against a strict schema; 415/400/422 otherwise. */
export function readBody<S extends z.ZodType>(ctx: Context, schema: S): z.output<S> {
  if (!ctx.is('application/json')) {
    throw UnsupportedMediaType('Send the request body as JSON with Content-Type: application/json.');
  }
  const body = (ctx.request as { body?: unknown }).body;
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw BadRequest('The request body must be a JSON object.');
  }
  return parseOrThrow(schema, body);
}

export function readQuery<S extends z.ZodType>(ctx: Context, schema: S): z.output<S> {
  return parseOrThrow(schema, { ...ctx.query });
}

function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const errors = fieldErrors(result.error);
    const summary = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
    throw ValidationFailed(`Invalid input: ${summary}`, errors);
  }
  return result.data;
}

/** An absolute http(s) URL (an IdP's, a website, a logo). */
export const httpUrl = z
  .string()
  .max(2000, 'must be at most 2000 characters')
  .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'must be an http(s) URL');

/** Whether `s` is an absolute https URL: the only kind of image a page of ours loads from elsewhere. */
export const isHttpsUrl = (s: unknown): s is string => typeof s === 'string' && URL.canParse(s) && new URL(s).protocol === 'https:';

/**
 * An absolute https URL (an organization's logo): a sign-in page never mixes in plain http, and
 * `javascript:` or `data:` never reach an `<img>`.
 */
export const httpsUrl = z.string().max(2000, 'must be at most 2000 characters').refine(isHttpsUrl, 'must be an https URL');

/**
 * Common field shapes, so one rule for a name or a page lives in one place (an email's and a
 * password's are the users' rules: users/user-fields.ts).
 */
export const fields = {
  name: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  limit: z.coerce.number().int().min(1, 'must be between 1 and 200').max(200, 'must be between 1 and 200').default(50),
  cursor: z.string().max(500).optional(),
};
