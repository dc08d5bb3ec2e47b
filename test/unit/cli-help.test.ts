import { readFileSync } from 'node:fs';
import test from 'ava';
import { commandHelp, environmentHelp, usageLine } from '../../src/cli-help.ts';
import { environmentVariables } from '../../src/config.ts';
import { commandNames, helpFor } from '../../src/main.ts';

// environmentVariables() walks the keys of the environment schema itself, so these checks cover
// every variable loadConfig reads.
const variables = environmentVariables();
const configurationDoc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

test('every environment variable has a line of help and a default', (t) => {
  t.true(variables.length >= 20, 'the whole schema was read');
  for (const v of variables) {
    t.regex(v.name, /^[A-Z][A-Z0-9_]+$/);
    t.true(v.text.length > 10, `${v.name} has a description`);
    t.true(v.default.length > 0, `${v.name} has a default`);
  }
  t.is(variables.find((v) => v.name === 'PORT')?.default, '3000', 'defaults are read from the schema');
  t.is(variables.find((v) => v.name === 'SEED_DEMO')?.default, 'true');
  t.is(variables.find((v) => v.name === 'DATABASE_URL')?.default, 'embedded PGlite under DATA_DIR', 'an optional variable says what unset means');
});

test('the general help and `start --help` list every environment variable, each on one line with its default', (t) => {
  for (const text of [helpFor([]), helpFor(['start'])]) {
    for (const v of variables) {
      const line = text.split('\n').find((l) => l.trimStart().startsWith(`${v.name} `));
      t.truthy(line, `${v.name} is listed`);
      t.true(line!.includes(v.text) && line!.includes(`[default: ${v.default}]`), line);
    }
  }
  t.is(environmentHelp().split('\n').length, variables.length + 1);
});

test('docs/configuration.md documents every environment variable in its table', (t) => {
  for (const v of variables) t.true(configurationDoc.includes(`| \`${v.name}\` |`), `${v.name} is in docs/configuration.md`);
});

test("every command's help shows its usage and each of its options; the general help names every command", (t) => {
  const general = helpFor([]);
  const names = commandNames();
  t.deepEqual(
    ['start', 'migrate', 'tenant create', 'tenant rotate-admin-key', 'tenant reset-admin-password', 'keys rotate', 'sample-app', 'help'].filter(
      (n) => !names.includes(n),
    ),
    [],
  );
  for (const name of names) {
    t.true(general.includes(`  ${name} `), `${name} in the general help`);
    const help = helpFor(name.split(' '));
    t.true(help.startsWith(`Usage: tessera ${name}`), help);
    t.regex(help, /-h, --help/);
  }
  t.regex(helpFor(['tenant', 'reset-admin-password']), /--slug S[\s\S]*--email E[\s\S]*--password P[\s\S]*--json/);
  t.regex(helpFor(['tenant', 'rotate-admin-key']), /--slug S[\s\S]*--json/);
  t.regex(helpFor(['sample-app']), /--issuer URL[\s\S]*--client-id ID[\s\S]*--port PORT.*default 3001/);
});

test('usage lines put required options bare and optional ones in brackets', (t) => {
  const command = {
    name: 'thing do',
    summary: 'do a thing',
    options: [
      { name: 'id', value: 'ID', required: true, help: 'which' },
      { name: 'json', help: 'as JSON' },
    ],
  };
  t.is(usageLine(command), 'tessera thing do --id ID [--json]');
  const help = commandHelp(command);
  t.regex(help, /^Usage: tessera thing do --id ID \[--json\]\n\nDo a thing\./);
  t.regex(help, /--id ID\s+which \(required\)/);
  t.notRegex(help, /PORT/, 'only commands that run the server list the environment');
});
