import type { Browser } from './browser.ts';

/**
 * `return_to` values that must not be honoured by a tenant's sign-in (slug `slug`): each one,
 * as a browser reads it, leads off the tenant's portal and account pages — to another tenant
 * (`otherSlug`), to another host, or into a header.
 */
export function hostileReturnTos(slug: string, otherSlug: string): string[] {
  const auth = `${otherSlug}/auth?client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb`;
  return [
    `/t/${slug}/portal/../../${auth}`,
    `/t/${slug}/account/../../${auth}`,
    `/t/${slug}/portal/%2e%2e/%2e%2e/${auth}`,
    `/t/${slug}/portal/%2E%2E/%2E%2E/${auth}`,
    `/t/${slug}/portal/.%2e/.%2E/${auth}`,
    `/t/${slug}/portal/./organizations`,
    `/t/${slug}/portal/%2e/organizations`,
    `/t/${slug}/portal/..%2f..%2f${auth}`,
    `/t/${slug}/portal//evil.example`,
    '//evil.example/x',
    `//evil.example/t/${slug}/portal/organizations`,
    '/\\evil.example/x',
    `/t/${slug}/portal\\..\\..\\${auth}`,
    'https://evil.example/x',
    `https://evil.example/t/${slug}/portal/organizations`,
    'javascript:alert(1)',
    `/t/${slug}/portal/organizations\r\nSet-Cookie: x=1`,
    `/t/${slug}/portal/organizations\nLocation: https://evil.example/`,
    `/t/${slug}/portal/organizations\u0000`,
    `/t/${otherSlug}/portal/organizations`,
  ];
}

/**
 * Walks a signed-in browser from a login URL through the tenant's authorization endpoint to the
 * portal's callback, and answers where the callback sends it (its Location, as sent) — or
 * `refused <status>` when the login URL itself is refused as bad input (a NUL in the query).
 */
export async function callbackLocation(browser: Browser, origin: string, loginUrl: string): Promise<string> {
  let url = loginUrl;
  for (let hop = 0; hop < 12; hop++) {
    const res = await browser.request(url);
    const location = res.headers.get('location');
    if (hop === 0 && res.status >= 400 && res.status < 500) return `refused ${res.status}`;
    if (res.status < 300 || res.status >= 400 || !location) throw new Error(`stopped at ${url} (${res.status}) before the callback`);
    if (new URL(url).pathname.endsWith('/portal/callback')) return location;
    url = new URL(location, url).href;
    if (!url.startsWith(origin)) throw new Error(`left for ${url} before the callback`);
  }
  throw new Error(`no callback reached from ${loginUrl}`);
}
