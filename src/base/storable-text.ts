import type { Context, Next } from 'koa';
import { BadRequest, type FieldError, NotFound } from './errors.ts';

/**
 * Text PostgreSQL can store. It refuses U+0000 in text and jsonb alike, and a lone UTF-16
 * surrogate is not Unicode text at all: jsonb refuses its `\uD800` escape, and text would store a
 * U+FFFD in its place. Such input is refused where a request is read, so it never reaches SQL —
 * where one bad value would fail every statement sent along with it (db/one-shot.ts).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: U+0000 is the very character refused here.
const UNSTORABLE = /[\u0000\p{Cs}]/u;

export const isStorableText = (text: string): boolean => !UNSTORABLE.test(text);

/** Why `text` can't be stored, or undefined when it can. */
export function unstorableTextProblem(text: string): string | undefined {
  const m = UNSTORABLE.exec(text);
  if (!m) return undefined;
  return m[0] === '\u0000' ? 'must not contain the NUL character (U+0000)' : 'must be valid Unicode text (it holds an unpaired UTF-16 surrogate)';
}

/**
 * How deep any request body may nest. No field of the API nests more than a few levels (metadata
 * has its own, lower limit); this bounds what any code walking a body has to expect.
 */
export const MAX_NESTING = 64;

/** An object or array met while walking a body; its path is found from its parents, when needed. */
interface Visit {
  value: object;
  parent: Visit | undefined;
  key: string;
  depth: number;
}

/**
 * The first field of a parsed body or query (keys included) holding text that can't be stored,
 * or nesting deeper than `maxDepth`. Iterative, so a body nested thousands of levels deep can't
 * exhaust the stack here; one small object per object or array met (oidc/adapter.ts walks every
 * payload it saves).
 */
export function findUnstorable(input: unknown, maxDepth = MAX_NESTING): FieldError | undefined {
  if (typeof input === 'string') {
    const problem = unstorableTextProblem(input);
    return problem ? { field: '(body)', message: problem } : undefined;
  }
  if (input === null || typeof input !== 'object') return undefined;
  const pending: Visit[] = [{ value: input, parent: undefined, key: '', depth: 0 }];
  for (let visit = pending.pop(); visit; visit = pending.pop()) {
    if (visit.depth >= maxDepth) return { field: fieldName(visit), message: `nests more than ${maxDepth} levels deep` };
    const value = visit.value as Record<string, unknown>;
    for (const key of Object.keys(value)) {
      const keyProblem = unstorableTextProblem(key);
      if (keyProblem) return { field: fieldName(visit), message: `field names ${keyProblem}` };
      const child = value[key];
      if (typeof child === 'string') {
        const problem = unstorableTextProblem(child);
        if (problem) return { field: fieldName(visit, key), message: problem };
      } else if (child !== null && typeof child === 'object') {
        pending.push({ value: child, parent: visit, key, depth: visit.depth + 1 });
      }
    }
  }
  return undefined;
}

/** `metadata.plan`; a very deep path is cut short, so the message stays readable. */
function fieldName(visit: Visit, key?: string): string {
  const path = key === undefined ? [] : [key];
  for (let v: Visit | undefined = visit; v?.parent; v = v.parent) path.unshift(v.key);
  if (path.length === 0) return '(body)';
  return path.length > 6 ? `${path.slice(0, 6).join('.')}.…` : path.join('.');
}

/**
 * Refuses a request whose path, query or parsed body (run after the body parser) holds text
 * PostgreSQL can't store, or nests too deep. A path with such text names nothing (404, as for any
 * malformed id); a query or body is answered with a 400 naming the field — a problem for the
 * APIs, a page for forms.
 */
export async function refuseUnstorableInput(ctx: Context, next: Next) {
  if (!isStorableText(decodedPath(ctx.path))) throw NotFound('There is nothing at this path: no name or id holds the characters it has.');
  const found = findUnstorable(ctx.query, 2) ?? findUnstorable((ctx.request as { body?: unknown }).body);
  if (found) throw BadRequest(`The request can't be processed: ${found.field} ${found.message}.`, [found]);
  await next();
}

/** The path as the router decodes it; a malformed escape stays as it is (as the router leaves it). */
function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
