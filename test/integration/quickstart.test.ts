import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { freePort } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';

const BIN = new URL('../../bin/tessera.js', import.meta.url).pathname;

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
// database), then the printed sample-app command, then sign in with the printed admin user.
test('quickstart: npm start, run the printed sample-app command, sign in', async (tt) => {
  const port = await freePort();
  const server = run(['start'], { PORT: String(port), DATA_DIR: mkdtempSync(join(tmpdir(), 'tessera-qs-')), DATABASE_URL: '', LOG_LEVEL: 'warn' });
  let sample: ReturnType<typeof run> | undefined;
  try {
    await waitFor(() => /npx tessera sample-app/.test(server.output()), 'the demo banner');
    const command = /npx tessera (sample-app .+)/.exec(server.output())![1]!.trim().split(/\s+/);
    const [email, password] = /Admin user\s+(\S+)\s+\/\s+(\S+)/.exec(server.output())!.slice(1) as [string, string];
    sample = run(command, {});
    await waitFor(async () => (await fetch('http://localhost:3001/')).ok, 'the sample app');

    const browser = new Browser([`http://localhost:${port}`, 'http://localhost:3001']);
    const login = await browser.follow('http://localhost:3001/login');
    tt.true(login.url.startsWith(`http://localhost:${port}/t/demo/interaction/`), login.url);
    const html = await login.res.text();
    tt.regex(html, /Sign in to Sample app/);
    const done = await enterCredentials(browser, html, login.url, email, password);
    tt.is(done.res.status, 200);
    tt.true(done.url.startsWith('http://localhost:3001/callback'));
    const page = await done.res.text();
    tt.regex(page, /Signed in/);
    tt.true(page.includes(email));
    tt.regex(page, /client_id/);
  } finally {
    sample?.child.kill('SIGTERM');
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
  }
});
