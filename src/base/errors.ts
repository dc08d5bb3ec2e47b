import type { Context, Next } from 'koa';
import { isDatabaseUnavailable } from './database-unavailable.ts';
import type { Logger } from './logger.ts';

export interface FieldError {
  field: string;
  message: string;
}

/**
 * The one error family of the app. `code` is stable (clients and tests may rely on it); `detail`
 * is for people. Rendered as RFC 9457 problem+json for APIs and as a page for browsers.
 */
export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    detail: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
    /** RFC 9457 extension members, added to the problem document as they are. */
    readonly extensions?: Record<string, unknown>,
  ) {
    super(detail);
  }
  get detail(): string {
    return this.message;
  }
}

type Factory = (detail: string, errors?: FieldError[]) => AppError;

function kind(status: number, code: string, title: string): Factory {
  return (detail, errors) => new AppError(status, code, title, detail, errors);
}

export const BadRequest = kind(400, 'bad_request', 'Bad request');
export const ValidationFailed = kind(422, 'validation_failed', 'Invalid input');
export const Unauthorized: Factory = (detail) => new AppError(401, 'unauthorized', 'Unauthorized', detail, undefined, { 'WWW-Authenticate': 'Bearer' });
export const Forbidden = kind(403, 'forbidden', 'Forbidden');
/** The session does not meet an organization's authentication policy; `missing` says what it lacks (mfa, sso, fresh_sign_in, method). */
export const AuthPolicyNotMet = (detail: string, missing: string) =>
  new AppError(403, 'auth_policy_not_met', 'Forbidden', detail, undefined, undefined, { missing });
export const NotFound = kind(404, 'not_found', 'Not found');
export const Conflict = kind(409, 'conflict', 'Conflict');
export const PayloadTooLarge = kind(413, 'payload_too_large', 'Payload too large');
export const UnsupportedMediaType = kind(415, 'unsupported_media_type', 'Unsupported media type');
export const TooManyRequests = kind(429, 'too_many_requests', 'Too many requests');

/**
 * What a client is told to wait before trying again while the database is unreachable: a
 * PostgreSQL restart or failover takes seconds, and clients that retry at once only add load.
 */
export const RETRY_AFTER_SECONDS = 5;

/** 503 with Retry-After: the request may well succeed if sent again in a few seconds. */
export const ServiceUnavailable: Factory = (detail) =>
  new AppError(503, 'service_unavailable', 'Service unavailable', detail, undefined, { 'Retry-After': String(RETRY_AFTER_SECONDS) });

/** PostgreSQL's unique_violation, for turning a lost race into a 409 instead of a 500. */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}

function wantsJson(ctx: Context): boolean {
  return ctx.path.includes('/api/') || ctx.accepts('json', 'application/problem+json', 'html') !== 'html';
}

/**
 * Outermost error boundary: known errors keep their status; an unreachable database is a 503
 * with Retry-After; anything else is logged with the request id and answered as a 500 that
 * reveals nothing.
 */
export function errorBoundary(log: Logger, renderPage: (ctx: Context, status: number, title: string, detail: string) => void) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      const problem = toAppError(err);
      if (problem.code === 'service_unavailable' && !(err instanceof AppError)) {
        // One short line per request, no stack: an outage fails every request the same way.
        (ctx.state.log ?? log).warn({ reason: (err as Error).message, code: (err as { code?: unknown }).code }, 'database unavailable');
      } else if (problem.status >= 500) {
        (ctx.state.log ?? log).error({ err }, 'unhandled error');
      }
      ctx.status = problem.status;
      for (const [k, v] of Object.entries(problem.headers ?? {})) ctx.set(k, v);
      if (wantsJson(ctx)) {
        ctx.type = 'application/problem+json';
        ctx.body = {
          type: 'about:blank',
          title: problem.title,
          status: problem.status,
          detail: problem.detail,
          code: problem.code,
          ...(problem.errors ? { errors: problem.errors } : {}),
          ...problem.extensions,
          ...(ctx.state.requestId ? { request_id: ctx.state.requestId } : {}),
        };
      } else {
        renderPage(ctx, problem.status, problem.title, problem.detail);
      }
    }
  };
}

function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isDatabaseUnavailable(err)) return ServiceUnavailable('The service is briefly unavailable. Try again in a few seconds.');
  const e = err as { status?: number; statusCode?: number; expose?: boolean; message?: string; type?: string };
  const status = e?.status ?? e?.statusCode;
  // Errors thrown by koa/body parsers carry an exposable status (malformed JSON, too large, …).
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (e.type === 'entity.parse.failed') return BadRequest('The request body is not valid JSON.');
    if (status === 413) return PayloadTooLarge('The request body is too large.');
    if (status === 415) return UnsupportedMediaType('Send the request body as application/json.');
    return new AppError(status, 'bad_request', 'Bad request', e.expose && e.message ? e.message : 'The request could not be processed.');
  }
  return new AppError(
    500,
    'internal_error',
    'Internal server error',
    'Something went wrong on our side. The request id in the response identifies it in the logs.',
  );
}
