import { CookieJar } from 'tough-cookie';

/**
 * A scripted user agent for the sign-in pages: keeps cookies, follows redirects one by one and
 * submits forms, so tests see every hop. (Page rendering is tested with a real browser elsewhere.)
 */
export class Browser {
  readonly jar = new CookieJar();
  /** Every URL requested, in order (tests look for one hop of a redirect chain). */
  readonly visited: string[] = [];
  private readonly origins: string[];
  /** `origin`: where redirects are followed (several for a flow through an upstream IdP). */
  constructor(origin: string | string[]) {
    this.origins = Array.isArray(origin) ? origin : [origin];
  }

  private get origin() {
    return this.origins[0]!;
  }

  private within(url: string) {
    return this.origins.some((o) => url.startsWith(o));
  }

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    this.visited.push(url);
    const cookie = await this.jar.getCookieString(url);
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
    });
    for (const c of res.headers.getSetCookie()) await this.jar.setCookie(c, url);
    return res;
  }

  /** GETs `url` and follows redirects while they stay on `origin`; returns the last response and its URL. */
  async follow(url: string, init: RequestInit = {}, maxHops = 10): Promise<{ res: Response; url: string }> {
    let current = url;
    let res = await this.request(current, init);
    for (let hop = 0; hop < maxHops && res.status >= 300 && res.status < 400; hop++) {
      const next = new URL(res.headers.get('location')!, current).href;
      current = next;
      if (!this.within(next)) return { res, url: next };
      res = await this.request(next);
    }
    return { res, url: current };
  }

  async submit(action: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
    const url = new URL(action, this.origin);
    return this.follow(url.href, {
      method: 'POST',
      // Browsers send the page's origin; forms post to the page's own origin here.
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url.origin, ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

export function formAction(html: string): string {
  const m = /<form method="post" action="([^"]+)"/.exec(html);
  if (!m) throw new Error(`no form in page:\n${html.slice(0, 500)}`);
  return m[1]!.replace(/&amp;/g, '&');
}

/**
 * On a sign-in page for an organization (organization=), its "Continue with …’s SSO" button:
 * pressed, answering where that leads (the IdP). Any other page is answered as it is.
 */
export async function continueWithSso(browser: Browser, hop: { res: Response; url: string }): Promise<{ res: Response; url: string }> {
  if (hop.res.status !== 200 || !hop.url.includes('/interaction/')) return hop;
  const html = await hop.res.text();
  const sso = /<form method="post" action="([^"]+\/interaction\/[^/"]+\/sso)">/.exec(html)?.[1];
  if (!sso) return { res: new Response(html, { status: hop.res.status, headers: hop.res.headers }), url: hop.url };
  return browser.submit(new URL(sso.replace(/&amp;/g, '&'), hop.url).href, {});
}

/** The href of the first link whose text matches. */
export function linkTo(html: string, text: RegExp): string {
  for (const m of html.matchAll(/<a href="([^"]+)"[^>]*>([^<]*)<\/a>/g)) {
    if (text.test(m[2]!)) return m[1]!.replace(/&amp;/g, '&');
  }
  throw new Error(`no link ${text} in page:\n${html.slice(0, 800)}`);
}

/**
 * Signs in on Tessera's email-first page: the email goes to the identify step, then email and
 * password to the password step. `pageUrl` is where `html` was served. Returns the last hop —
 * where the password step answers with the code step's page (a person with a second factor), that
 * page at its own address, `…/mfa`, where its forms post and where a reload finds it.
 */
export async function enterCredentials(browser: Browser, html: string, pageUrl: string, email: string, password: string, headers: Record<string, string> = {}) {
  let page = html;
  let url = pageUrl;
  if (!/name="password"/.test(page)) {
    // The email form (an organization's sign-in page has its SSO button before it).
    const identify = /<form method="post" action="([^"]+\/identify)"/.exec(page)?.[1]?.replace(/&amp;/g, '&') ?? formAction(page);
    const identified = await browser.submit(new URL(identify, url).href, { email }, headers);
    // Sent to an organization's IdP: the caller takes it from there.
    if ((identified.res.status >= 300 && identified.res.status < 400) || new URL(identified.url).origin !== new URL(url).origin) return identified;
    page = await identified.res.text();
    url = identified.url;
    if (!/name="password"/.test(page)) return { res: new Response(page, { status: identified.res.status }), url };
  }
  const answered = await browser.submit(new URL(formAction(page), url).href, { email, password }, headers);
  if (answered.res.status !== 200 || !answered.url.endsWith('/login')) return answered;
  const body = await answered.res.text();
  // A form of the code step (a code, or a passkey: …/mfa/passkey) names where it lives.
  const codeStep = /<form method="post" action="([^"]+\/interaction\/[^/"]+\/mfa)(?:\/passkey)?"/.exec(body)?.[1];
  const res = new Response(body, { status: answered.res.status, headers: answered.res.headers });
  return { res, url: codeStep ? new URL(codeStep.replace(/&amp;/g, '&'), answered.url).href : answered.url };
}

/** Text of an HTML attribute or element as the page escaped it, back to what it says. */
export const unescapeHtml = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** The passkey options a page hands its script (`data-options`, JSON); throws when the page has none. */
export function passkeyOptionsIn(html: string) {
  const raw = /data-options="([^"]+)"/.exec(html)?.[1];
  if (!raw) throw new Error(`no passkey options on the page:\n${html.slice(0, 400)}`);
  return JSON.parse(unescapeHtml(raw));
}
