/**
 * Where the portal's sign-in may send the browser back to (`?return_to=` of the portal's and an
 * organization's login pages): only the tenant's own portal and account pages. Anything else is
 * the portal's home.
 *
 * The value is judged as the browser will read it, not as written: it is resolved against an
 * origin with the WHATWG URL parser, and its resolved path must lie under `/t/<slug>/portal/` or
 * `/t/<slug>/account/`. Values the parser would rewrite are refused outright rather than
 * "cleaned": dot segments (`.`, `..`, and their percent-encoded forms, which browsers also
 * resolve), backslashes (read as `/`), and control characters (stripped, or header splitting).
 * The normalized value is what is returned, so the Location header says exactly what was judged.
 */

const MAX_LENGTH = 500;
// Any origin will do: only the path and query are kept, and only when the origin did not change.
const BASE = 'https://return-to.invalid';

export function safeReturnTo(tenantSlug: string, candidate: unknown): string {
  const home = `/t/${tenantSlug}/`;
  const fallback = `${home}portal/organizations`;
  if (typeof candidate !== 'string' || candidate.length > MAX_LENGTH) return fallback;
  // A path on this host: one leading slash (`//host` and `/\host` are other hosts to a browser).
  if (!candidate.startsWith('/') || candidate.startsWith('//')) return fallback;
  // The characters our own pages' paths and queries are written with, and no others.
  if (!/^[\w\-/?=&%.]*$/.test(candidate)) return fallback;
  // Excluded by the set above already; named because they are what attacks use.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\\\u0000-\u001f\u007f]/.test(candidate) || /%2e/i.test(candidate)) return fallback;
  const path = candidate.split(/[?#]/, 1)[0]!;
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) return fallback;
  // Empty segments too: `/portal//evil.example` stays on this host, but is a trap for the next parser.
  if (path.includes('//')) return fallback;
  // An encoded slash or backslash in the path is a separator to some servers and proxies.
  if (/%(2f|5c)/i.test(path)) return fallback;
  let url: URL;
  try {
    url = new URL(candidate, BASE);
  } catch {
    return fallback;
  }
  if (url.origin !== BASE || url.username || url.password) return fallback;
  if (!url.pathname.startsWith(`${home}portal/`) && !url.pathname.startsWith(`${home}account/`)) return fallback;
  return `${url.pathname}${url.search}`;
}
