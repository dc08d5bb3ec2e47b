import * as querystring from 'node:querystring';
import type { Context, Next } from 'koa';
import { findUnstorable } from '../base/storable-text.ts';

/** Same ceiling as oidc-provider's own body reader. */
const BODY_LIMIT = 56 * 1024;

/**
 * In front of every endpoint of oidc-provider (registered with provider.use, before the token
 * gateway): what the provider would mishandle is refused with an OAuth error.
 *
 * - A compressed body: the provider reads a body as it comes, whatever its Content-Encoding, so it
 *   would read garbage. OAuth clients send bodies uncompressed.
 * - A parameter holding text PostgreSQL can't store (base/storable-text.ts): codes, tokens and
 *   client ids are looked up in it, and a logout's `state` is stored with the session. The
 *   authorization endpoint's parameters are checked by the provider itself (provider.ts), where
 *   the refusal can go back to the app.
 *
 * A form body is read and parsed here, once: the provider and the token gateway take it from
 * `req.body`.
 */
export async function oauthInput(ctx: Context, next: Next) {
  const encoding = ctx.get('content-encoding').trim();
  const hasBody = ctx.get('transfer-encoding') !== '' || Number(ctx.get('content-length')) > 0;
  if (hasBody && encoding && encoding.toLowerCase() !== 'identity') {
    return oauthError(ctx, 415, `Content-Encoding ${encoding.slice(0, 40)} is not supported here: send the body uncompressed`);
  }
  const checked = ctx.path !== '/auth';
  const inQuery = checked ? findUnstorable(ctx.query, 2) : undefined;
  if (inQuery) return oauthError(ctx, 400, `${inQuery.field} ${inQuery.message}`);
  if (ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded')) {
    const raw = await readLimited(ctx);
    if (raw === undefined) return oauthError(ctx, 413, 'request body too large');
    const body = querystring.parse(raw);
    const inBody = checked ? findUnstorable(body, 2) : undefined;
    if (inBody) return oauthError(ctx, 400, `${inBody.field} ${inBody.message}`);
    (ctx.req as unknown as { body: unknown }).body = body;
  }
  return next();
}

function oauthError(ctx: Context, status: number, description: string) {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error: 'invalid_request', error_description: description };
}

async function readLimited(ctx: Context): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
