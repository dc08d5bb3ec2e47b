import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './app.ts';
import type { Browser } from './browser.ts';

/** Debian's Apache and mod_auth_openidc (`apt-get install apache2 libapache2-mod-auth-openidc`). */
export const APACHE_BIN = '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';
export const OIDC_MODULE = `${MODULES}/mod_auth_openidc.so`;

/** Why an Apache relying party can't run on this machine, or undefined when it can. */
export function apacheMissing(): string | undefined {
  const missing = [APACHE_BIN, OIDC_MODULE].filter((p) => !existsSync(p));
  return missing.length ? `${missing.join(' and ')} not installed (apt-get install apache2 libapache2-mod-auth-openidc)` : undefined;
}

export interface ApacheRp {
  /** Where Apache listens, e.g. http://127.0.0.1:PORT */
  url: string;
  /** The protected page: a CGI script that prints its environment, one `NAME=value` per line. */
  protectedUrl: string;
  /** The same script for whoever is owner of Acme / of Globex (`Require claim org_roles_by_org:<slug>:owner`). */
  acmeOwnersUrl: string;
  globexOwnersUrl: string;
  redirectUri: string;
  /** Apache's error log so far (mod_auth_openidc logs why a sign-in failed there). */
  errorLog(): string;
  stop(): Promise<void>;
}

export interface ApacheRpOptions {
  metadataUrl: string;
  clientId: string;
  clientSecret: string;
  scope: string;
  /** The redirect URI must be registered before Apache starts: the caller picks the port. */
  port: number;
}

/** A free port for Apache, and the redirect URI it will serve there (to register with the client). */
export async function apacheAddress() {
  const port = await freePort();
  return { port, redirectUri: `http://127.0.0.1:${port}/app/redirect_uri` };
}

/**
 * Apache as an OpenID Connect relying party, the way an app behind mod_auth_openidc runs: its own
 * ServerRoot and configuration in a temporary folder, in the foreground, on a loopback port (no
 * system service, nothing installed). Everything under /app needs a sign-in; /app/env is a CGI
 * script printing the environment Apache hands the app, the OIDC_CLAIM_* variables among it.
 */
export async function startApacheRp(opts: ApacheRpOptions): Promise<ApacheRp> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-apache-'));
  // Run as root (CI containers), Apache hands requests to `nobody`, who must read the script.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'cgi'));
  const script = join(dir, 'cgi', 'env.sh');
  writeFileSync(script, '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\nenv\n');
  chmodSync(script, 0o755);
  const base = `http://127.0.0.1:${opts.port}`;
  const redirectUri = `${base}/app/redirect_uri`;
  const asRoot = process.getuid?.() === 0;
  const conf = join(dir, 'apache2.conf');
  writeFileSync(
    conf,
    `ServerRoot "${dir}"
ServerName 127.0.0.1:${opts.port}
Listen 127.0.0.1:${opts.port}
PidFile "${dir}/apache2.pid"
DefaultRuntimeDir "${dir}"
ErrorLog "${dir}/error.log"
LogLevel warn auth_openidc:info
LoadModule mpm_prefork_module ${MODULES}/mod_mpm_prefork.so
LoadModule authn_core_module ${MODULES}/mod_authn_core.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule authz_user_module ${MODULES}/mod_authz_user.so
LoadModule cgi_module ${MODULES}/mod_cgi.so
LoadModule alias_module ${MODULES}/mod_alias.so
LoadModule auth_openidc_module ${OIDC_MODULE}
${asRoot ? 'User nobody\nGroup nogroup' : ''}
StartServers 1
MinSpareServers 1
MaxSpareServers 2
DocumentRoot "${dir}/cgi"

OIDCProviderMetadataURL ${opts.metadataUrl}
OIDCClientID ${opts.clientId}
OIDCClientSecret ${opts.clientSecret}
OIDCRedirectURI ${redirectUri}
OIDCCryptoPassphrase ${randomBytes(24).toString('hex')}
OIDCScope "${opts.scope}"
OIDCPKCEMethod S256
OIDCClaimPrefix OIDC_CLAIM_
OIDCPassClaimsAs environment

ScriptAlias /app/env "${script}"
ScriptAlias /app/acme-owners "${script}"
ScriptAlias /app/globex-owners "${script}"
<Location /app>
  AuthType openid-connect
  Require valid-user
</Location>
# Apache itself deciding on a role in an organization (the flat format's org_roles_by_org).
<Location /app/acme-owners>
  AuthType openid-connect
  Require claim org_roles_by_org:acme:owner
</Location>
<Location /app/globex-owners>
  AuthType openid-connect
  Require claim org_roles_by_org:globex:owner
</Location>
`,
  );
  // Its own process group: Apache's prefork parent signals its whole group when it stops, which
  // would otherwise be the test runner's.
  const child: ChildProcess = spawn(APACHE_BIN, ['-d', dir, '-f', conf, '-DFOREGROUND'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const errorLog = () => {
    try {
      return readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready when it answers on its port (anything: / has no page).
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) {
      const log = errorLog();
      await stop();
      throw new Error(`apache2 exited (${child.exitCode}): ${output}\n${log}`);
    }
    try {
      await fetch(`${base}/`, { redirect: 'manual' });
      break;
    } catch {
      if (i > 100) {
        await stop();
        throw new Error(`apache2 did not answer on ${base}: ${output}\n${errorLog()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url: base,
    protectedUrl: `${base}/app/env`,
    acmeOwnersUrl: `${base}/app/acme-owners`,
    globexOwnersUrl: `${base}/app/globex-owners`,
    redirectUri,
    errorLog,
    stop,
  };
}

/** The `NAME=value` lines the CGI script printed, as a map. */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

/**
 * A browser's first navigation to a page behind mod_auth_openidc, which starts a sign-in only
 * for a navigation (Sec-Fetch-Mode: navigate) and answers 401 to anything else. fetch always
 * says "cors", so this one request goes through node:http; its cookies (the sign-in's state)
 * land in the Browser's jar and the Browser follows the redirect from there.
 */
export async function navigate(browser: Browser, url: string) {
  const res = await new Promise<{ status: number; location?: string | undefined; cookies: string[] }>((resolve, reject) => {
    // The same User-Agent as the Browser's fetch: mod_auth_openidc binds the sign-in's state to it.
    get(url, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'user-agent': 'node' } }, (r) => {
      r.resume();
      resolve({ status: r.statusCode ?? 0, location: r.headers.location, cookies: r.headers['set-cookie'] ?? [] });
    }).on('error', reject);
  });
  for (const c of res.cookies) await browser.jar.setCookie(c, url);
  if (res.status !== 302 || !res.location) throw new Error(`mod_auth_openidc did not start a sign-in at ${url}: ${res.status}`);
  return browser.follow(new URL(res.location, url).href);
}
