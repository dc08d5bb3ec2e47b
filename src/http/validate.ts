import type { Context } from 'koa';
import { z } from 'zod';
import { parseEmail } from '../users/email-address.ts';
import { passwordProblem } from '../users/password-policy.ts';
import { BadRequest, UnsupportedMediaType, ValidationFailed, type FieldError } from './errors.ts';

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

/** Common field shapes, so one rule for an email or a name lives in one place. */
export const fields = {
  /**
   * An email address by the one rule (users/email-address.ts); the output is the address to
   * store. The published schema can only sketch the rule (one @, no spaces).
   */
  email: z
    .string()
    .max(320, 'must be a valid email address: it is too long')
    .transform((s, ctx) => {
      const parsed = parseEmail(s);
      if (parsed.ok) return parsed.email.address;
      ctx.addIssue({ code: 'custom', message: `must be a valid email address: it ${parsed.problem}` });
      return z.NEVER;
    })
    .meta({ format: 'email', pattern: '^\\s*[^@\\s]+@[^@\\s]+\\s*$' }),
  name: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  password: z.string().superRefine((p, ctx) => {
    const problem = passwordProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  limit: z.coerce.number().int().min(1, 'must be between 1 and 200').max(200, 'must be between 1 and 200').default(50),
  cursor: z.string().max(500).optional(),
};
