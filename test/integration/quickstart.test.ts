import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { freePort } from '../helpers/app.ts';
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

async function waitFor(predicate: () => boolean | Promise<boolean>, what: string) {
  for (let i = 0; i < 200; i++) {
    try {
      if (await predicate()) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// The README's quickstart, as a new user follows it: `npm start` on a bare machine (embedded
// database), then the printed sample-app command, then sign in with the printed admin user — in
// Chromium. Then what the sample app offers: the claims, a refresh, and signing out.
test('quickstart: npm start, run the printed sample-app command, sign in, refresh the tokens, sign out', async (tt) => {
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
    await waitFor(async () => (await fetch(`${SAMPLE_APP}/`)).ok, 'the sample app');

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
