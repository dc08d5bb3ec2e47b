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
  // Up to 90 s: an embedded database starts slowly on a loaded machine.
  for (let i = 0; i < 600; i++) {
    try {
      if (await predicate()) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// The README's quickstart, as a new user follows it: `npm start` on a bare machine (embedded
// database), then the printed sample-app command, then sign in with the printed admin user. Then
// its "Lost the printed secrets?": stop the server, issue a new admin password and API key, start
// again, and sign in with the new password.
test('quickstart: npm start, run the printed sample-app command, sign in; lost secrets are replaced', async (tt) => {
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
    await waitFor(async () => (await fetch('http://localhost:3001/')).ok, 'the sample app');

    const signInToSampleApp = async (withPassword: string) => {
      const browser = new Browser([`http://localhost:${port}`, 'http://localhost:3001']);
      const login = await browser.follow('http://localhost:3001/login');
      tt.true(login.url.startsWith(`http://localhost:${port}/t/demo/interaction/`), login.url);
      const html = await login.res.text();
      tt.regex(html, /Sign in to Sample app/);
      return enterCredentials(browser, html, login.url, email, withPassword);
    };
    const done = await signInToSampleApp(password);
    tt.is(done.res.status, 200);
    tt.true(done.url.startsWith('http://localhost:3001/callback'));
    const page = await done.res.text();
    tt.regex(page, /Signed in/);
    tt.true(page.includes(email));
    tt.regex(page, /client_id/);

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
    const refused = await signInToSampleApp(password);
    tt.false(refused.url.startsWith('http://localhost:3001/callback'), 'the old password no longer signs in');
    const again = await signInToSampleApp(newPassword);
    tt.true(again.url.startsWith('http://localhost:3001/callback'), again.url);
    tt.true((await again.res.text()).includes(email));
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
