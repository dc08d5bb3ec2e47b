import { bodyParser } from '@koa/bodyparser';
import type { Context, Middleware } from 'koa';
import { BadRequest, UnsupportedMediaType } from '../base/errors.ts';
import { refuseUnstorableInput } from '../base/storable-text.ts';

/**
 * The request readers of Tessera's own routes (the OAuth endpoints read theirs in
 * oidc/oauth-input.ts): the body parsed, a body that can't be read answered as a 4xx, and then
 * the path, query and body checked for text PostgreSQL can't store (base/storable-text.ts).
 *
 * Bodies may come uncompressed or with `Content-Encoding: gzip`, `deflate` or `br` (the size
 * limit applies to the decompressed body).
 */
export function jsonBody(limit: string): Middleware[] {
  return [bodyParser({ enableTypes: ['json'], jsonLimit: limit, encoding: 'utf-8', onError: refuseUnreadable }), refuseUnstorableInput];
}

export function formBody(limit: string): Middleware[] {
  return [bodyParser({ enableTypes: ['form'], formLimit: limit, onError: refuseUnreadable }), refuseUnstorableInput];
}

/**
 * A body the parser could not read. Two cases are ours to name: an encoding it does not know
 * (raw-body's inflation answers 415), and a body that is not what its Content-Encoding says
 * (zlib's errors carry no HTTP status). The rest — malformed JSON, too large — carry their
 * status on to the error boundary.
 */
function refuseUnreadable(err: Error, ctx: Context): never {
  const status = (err as { status?: unknown }).status;
  const encoding = ctx.get('content-encoding').trim();
  if (status === 415) {
    throw UnsupportedMediaType(`Content-Encoding "${encoding.slice(0, 40)}" is not supported: send the body uncompressed, or with gzip, deflate or br.`);
  }
  if (typeof status !== 'number' && encoding && encoding.toLowerCase() !== 'identity') {
    throw BadRequest(`The request body could not be decompressed: it is not ${encoding.slice(0, 40)} data, as its Content-Encoding header says.`);
  }
  throw err;
}
