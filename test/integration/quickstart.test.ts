import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { freePort } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { launchChromium, screenshots } from '../helpers/chromium.ts';
import { watchProblems } from '../helpers/page-problems.ts';

const BIN = new URL('../../bin/tessera.js', import.meta.url).pathname;
const SAMPLE_APP = 'http://localhost:3001';

function run(args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  return { child, output: () => out };
}

async function waitFor(predicate: () => boolean | Promise<boolean>, what: string | (() => string)) {
  // Up to 90 s: an embedded database starts slowly on a loaded machine.
  for (let i = 0; i < 600; i++) {
    try {
      if (await predicate()) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
}

// The README's quickstart, as a new user follows it: `npm start` on a bare machine (embedded
// database), then the printed sample-app command, then sign in with the printed admin user — in
// Chromium. Then what the sample app offers: the claims, a refresh, and signing out.
test.serial('quickstart: npm start, run the printed sample-app command, sign in, refresh the tokens, sign out', async (tt) => {
  const port = await freePort();
  const server = run(['start'], { PORT: String(port), DATA_DIR: mkdtempSync(join(tmpdir(), 'tessera-qs-')), DATABASE_URL: '', LOG_LEVEL: 'warn' });
  let sample: ReturnType<typeof run> | undefined;
  const chrome = await launchChromium();
  try {
    await waitFor(() => /npx tessera sample-app/.test(server.output()), 'the demo banner');
    const command = /npx tessera (sample-app .+)/.exec(server.output())![1]!.trim().split(/\s+/);
    const [email, password] = /Admin user\s+(\S+)\s+\/\s+(\S+)/.exec(server.output())!.slice(1) as [string, string];
    const [issuer, apiKey] = [/Issuer\s+(\S+)/.exec(server.output())![1]!, /Admin API key\s+(\S+)/.exec(server.output())![1]!];

    // What a sign-in shows has to be escaped: a name and an organization with markup in them.
    const admin = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${issuer}/api/v1/admin${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      tt.true(res.ok, `${method} ${path}: ${res.status}`);
      return res.json();
    };
    const user = (await admin('GET', `/users?email=${encodeURIComponent(email)}`)).data[0];
    await admin('PATCH', `/users/${user.id}`, { name: 'Ada <img src=x onerror=alert(1)>' });
    const org = await admin('POST', '/organizations', { name: 'Globex <b>&</b> Co' });
    await admin('POST', `/organizations/${org.id}/members`, { user_id: user.id, role: 'billing' });

    sample = run(command, {});
    await waitFor(
      async () => (await fetch(`${SAMPLE_APP}/`)).ok,
      () => `the sample app, which said: ${sample!.output()}`,
    );

    const context = await chrome.newContext();
    const page = await context.newPage();
    const problems = watchProblems(page);
    await page.goto(`${SAMPLE_APP}/`);
    await page.getByRole('link', { name: 'Sign in with Tessera' }).click();
    await page.getByRole('heading', { name: /Sign in to Sample app/ }).waitFor();
    tt.true(page.url().startsWith(`http://localhost:${port}/t/demo/interaction/`), page.url());
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();

    await page.getByRole('heading', { name: 'Signed in' }).waitFor();
    tt.is(page.url(), `${SAMPLE_APP}/`);
    const idClaims = page.getByRole('table', { name: 'ID token claims' });
    const accessClaims = page.getByRole('table', { name: 'Access token claims' });
    tt.regex(await idClaims.getByRole('row', { name: /^email / }).innerText(), new RegExp(email.replace('.', '\\.')));
    tt.regex(await idClaims.getByRole('row', { name: /^name / }).innerText(), /Ada <img src=x onerror=alert\(1\)>/);
    tt.regex(await accessClaims.getByRole('row', { name: /^client_id / }).innerText(), new RegExp(command[command.indexOf('--client-id') + 1]!));
    tt.regex(await accessClaims.getByRole('row', { name: /^organizations / }).innerText(), /billing/);
    const orgRow = page.getByRole('row', { name: /Globex/ }).first();
    tt.regex(await orgRow.innerText(), /^Globex <b>&<\/b> Co\s+globex-\S+\s+billing\s/);
    tt.is(await page.locator('img[src=x], b').count(), 0, 'markup from claims is shown as text, never parsed');
    const refreshRow = page.getByRole('row', { name: /^Refresh token/ });
    tt.regex(await refreshRow.innerText(), /expires .+ when your sign-in session at Tessera ends/);
    await screenshots(page, 'sample-app-signed-in');

    const accessExpiry = await page
      .getByRole('row', { name: /^Access token/ })
      .locator('time')
      .getAttribute('datetime');
    await new Promise((r) => setTimeout(r, 1100)); // a new token's exp is a second later at least
    await page.getByRole('button', { name: 'Refresh tokens' }).click();
    const refreshed = page.getByRole('status').filter({ hasText: 'Refreshed at' });
    await refreshed.waitFor();
    tt.regex(await refreshed.innerText(), /a new access token \(expires \S+ \(in 15 minutes\)\) and a new refresh token/);
    const newExpiry = await page
      .getByRole('row', { name: /^Access token/ })
      .locator('time')
      .getAttribute('datetime');
    tt.true(Date.parse(newExpiry!) > Date.parse(accessExpiry!), `${newExpiry} after ${accessExpiry}`);
    // The tokens are still those of this user and this client.
    tt.regex(
      await page
        .getByRole('table', { name: 'ID token claims' })
        .getByRole('row', { name: /^email / })
        .innerText(),
      new RegExp(email.replace('.', '\\.')),
    );

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign out' }).waitFor();
    tt.true(page.url().startsWith(`http://localhost:${port}/t/demo/`), page.url());
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('status').filter({ hasText: 'You are signed out' }).waitFor();
    tt.true(page.url().startsWith(`${SAMPLE_APP}/?`), page.url());
    tt.is(await page.getByRole('heading', { name: 'Signed in' }).count(), 0);

    // Signed out at Tessera too: signing in again asks for the email.
    await page.getByRole('link', { name: 'Sign in with Tessera' }).click();
    await tt.notThrowsAsync(page.getByRole('heading', { name: /Sign in to Sample app/ }).waitFor());
    tt.deepEqual(problems, []);
    await context.close();
  } finally {
    await chrome.close();
    sample?.child.kill('SIGTERM');
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
  }
});

// The quickstart's "Lost the printed secrets?": stop the server, issue a new admin password and
// API key, start again, and sign in with the new password.
test.serial('quickstart: lost secrets are replaced by the CLI, and the old ones stop working', async (tt) => {
  const port = await freePort();
  const env = { PORT: String(port), DATA_DIR: mkdtempSync(join(tmpdir(), 'tessera-qs-')), DATABASE_URL: '', LOG_LEVEL: 'warn' };
  let server = run(['start'], env);
  let sample: ReturnType<typeof run> | undefined;
  try {
    await waitFor(() => /npx tessera sample-app/.test(server.output()), 'the demo banner');
    const command = /npx tessera (sample-app .+)/.exec(server.output())![1]!.trim().split(/\s+/);
    const [email, password] = /Admin user\s+(\S+)\s+\/\s+(\S+)/.exec(server.output())!.slice(1) as [string, string];
    const oldKey = /Admin API key\s+(tsk_\S+)/.exec(server.output())![1]!;
    sample = run(command, {});
    await waitFor(
      async () => (await fetch(`${SAMPLE_APP}/`)).ok,
      () => `the sample app, which said: ${sample!.output()}`,
    );

    const signInToSampleApp = async (withPassword: string) => {
      const browser = new Browser([`http://localhost:${port}`, SAMPLE_APP]);
      const login = await browser.follow(`${SAMPLE_APP}/login`);
      tt.true(login.url.startsWith(`http://localhost:${port}/t/demo/interaction/`), login.url);
      const html = await login.res.text();
      tt.regex(html, /Sign in to Sample app/);
      return enterCredentials(browser, html, login.url, email, withPassword);
    };
    const signedIn = async (withPassword: string) => {
      const done = await signInToSampleApp(withPassword);
      return done.url.startsWith(`${SAMPLE_APP}/`) && !done.url.startsWith(`${SAMPLE_APP}/login`) && (await done.res.text()).includes(email);
    };
    tt.true(await signedIn(password), 'the printed password signs in');

    // Lost the printed secrets? On the embedded database, stop the server first.
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    const reset = await runToEnd(['tenant', 'reset-admin-password', '--slug', 'demo', '--email', email], env);
    tt.is(reset.code, 0, reset.output);
    const newPassword = /Password\s+(\S+)\s+\(shown once/.exec(reset.output)![1]!;
    const rotated = await runToEnd(['tenant', 'rotate-admin-key', '--slug', 'demo'], env);
    tt.is(rotated.code, 0, rotated.output);
    const newKey = /Admin API key\s+(tsk_\S+)/.exec(rotated.output)![1]!;

    server = run(['start'], env);
    await waitFor(() => /rotate-admin-key --slug demo/.test(server.output()), 'the start without a banner');
    tt.notRegex(server.output(), /Admin API key|tsk_/, 'no secrets printed a second time');
    const users = (key: string) => fetch(`http://localhost:${port}/t/demo/api/v1/admin/users`, { headers: { authorization: `Bearer ${key}` } });
    tt.is((await users(oldKey)).status, 401);
    tt.is((await users(newKey)).status, 200);
    tt.false(await signedIn(password), 'the old password no longer signs in');
    tt.true(await signedIn(newPassword), 'the new password signs in');
  } finally {
    sample?.child.kill('SIGTERM');
    server.child.kill('SIGTERM');
    if (server.child.exitCode === null) await new Promise((r) => server.child.once('exit', r));
  }
});

/** A CLI command run to its end: its exit code and everything it printed. */
async function runToEnd(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const command = run(args, env);
  // 'close', not 'exit': by then all of its output has been read.
  const code = await new Promise<number | null>((r) => command.child.once('close', r));
  return { code, output: command.output() };
}
