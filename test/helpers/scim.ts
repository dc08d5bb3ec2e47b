import { adminApi, createTenant, type TestApp, type TestTenant } from './app.ts';

export interface ScimWorld {
  tenant: TestTenant;
  orgId: string;
  directoryId: string;
  token: string;
  base: string;
  /** A call to the directory's SCIM endpoint with its token (or `token`). */
  scim(method: string, path: string, body?: unknown, opts?: { token?: string; headers?: Record<string, string> }): Promise<ScimAnswer>;
  api: (method: string, path: string, body?: unknown) => ReturnType<typeof adminApi>;
}

export interface ScimAnswer {
  status: number;
  type: string;
  body: any;
  headers: Headers;
}

export async function scimCall(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ScimAnswer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/scim+json',
      ...(body !== undefined ? { 'content-type': 'application/scim+json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: json, headers: res.headers };
}

/** A tenant with an organization whose domain `example.com` is verified, and a SCIM directory of it. */
export async function scimWorld(
  t: TestApp,
  opts: { domain?: string; provider?: string; directory?: Record<string, unknown>; tenant?: TestTenant } = {},
): Promise<ScimWorld> {
  const tenant = opts.tenant ?? (await createTenant(t));
  const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
  const domain = opts.domain ?? 'example.com';
  const org = await api('POST', '/organizations', { name: `Acme ${Math.random().toString(36).slice(2, 8)}` });
  await api('POST', `/organizations/${org.body.id}/domains`, { domain });
  await api('PATCH', `/organizations/${org.body.id}/domains/${domain}`, { verified: true });
  const dir = await api('POST', `/organizations/${org.body.id}/directories`, { name: 'Directory', provider: opts.provider ?? 'generic', ...opts.directory });
  if (dir.status !== 201) throw new Error(`directory: ${dir.status} ${dir.text}`);
  const base = dir.body.scim_base_url as string;
  const token = dir.body.bearer_token as string;
  return {
    tenant,
    orgId: org.body.id,
    directoryId: dir.body.id,
    token,
    base,
    scim: (method, path, body, o = {}) => scimCall(base, o.token ?? token, method, path, body, o.headers),
    api,
  };
}

/** The organization's members, by email, with their roles. */
export async function membersOf(w: ScimWorld): Promise<Record<string, string[]>> {
  const res = await w.api('GET', `/organizations/${w.orgId}/members?limit=200`);
  return Object.fromEntries(res.body.data.map((m: { email: string; roles: string[] }) => [m.email, [...m.roles].sort()]));
}

/**
 * The directory's last request as the Admin API shows it, once it is the one `matches` expects:
 * the record is written just after the answer (not before it), so a read right after the answer
 * may still see the one before (it is written at most once a second). Waits up to five seconds.
 */
export async function lastRequestOnceItIs(
  read: () => Promise<{ last_request: Record<string, unknown> | null }>,
  matches: (last: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown> | null> {
  let last: Record<string, unknown> | null = null;
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 25))) {
    last = (await read()).last_request;
    if (last && matches(last)) break;
  }
  return last;
}
