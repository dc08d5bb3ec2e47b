import { execFileSync } from 'node:child_process';
import test from 'ava';
import argon2, { argon2Build, chooseArgon2Build } from '../../src/users/argon2.ts';
import {
  ARGON2_LEVELS,
  type Argon2LevelName,
  argon2BindingFile,
  cpuFlags,
  cpuSupports,
  isArgon2LevelBuilt,
  pickArgon2Level,
} from '../../src/users/argon2-builds.ts';
import { ARGON2_PARAMS, checkPassword, hashPassword } from '../../src/users/passwords.ts';

test('argon2id with the OWASP parameters', async (t) => {
  const hash = await hashPassword('correct horse');
  t.regex(hash, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
  t.deepEqual(await checkPassword(hash, 'correct horse'), { ok: true });
  t.deepEqual(await checkPassword(hash, 'wrong'), { ok: false });
});

test('a hash made with older parameters is rehashed on a successful check', async (t) => {
  const old = await argon2.hash('pw-123456', { ...ARGON2_PARAMS, memoryCost: 4096, timeCost: 3 });
  const r = await checkPassword(old, 'pw-123456');
  t.true(r.ok);
  t.regex(r.rehashed!, /m=19456,p=1,t=2/);
  t.is((await checkPassword(old, 'nope')).rehashed, undefined);
});

test('no stored hash (unknown user) still does argon2 work and fails; a malformed hash fails cleanly', async (t) => {
  const started = performance.now();
  t.deepEqual(await checkPassword(undefined, 'anything'), { ok: false });
  t.deepEqual(await checkPassword('not-a-hash', 'anything'), { ok: false });
  // Not a timing assertion: a sanity check that the dummy path really ran a hash at all.
  t.true(performance.now() - started > 1);
});

// Made with argon2's portable prebuilt binary. Every build for a newer CPU must agree byte for byte,
// or every stored password would stop working when an instance moves to another machine.
const KNOWN_SALT = 'tessera-fixed-salt-16';
const KNOWN_PASSWORD = 'Tr0ub4dor&3 ünïcode';
const KNOWN_HASH = '$argon2id$v=19$m=19456,p=1,t=2$dGVzc2VyYS1maXhlZC1zYWx0LTE2$CAjU9IwP/2J26jMOfeUkWpVJxFGHej6/OATL67xPcgI';

test('stored hashes stay valid with the argon2 build this process loaded (a known answer)', async (t) => {
  t.is(await argon2.hash(KNOWN_PASSWORD, { ...ARGON2_PARAMS, salt: Buffer.from(KNOWN_SALT) }), KNOWN_HASH);
  t.deepEqual(await checkPassword(KNOWN_HASH, KNOWN_PASSWORD), { ok: true });
  t.deepEqual(await checkPassword(KNOWN_HASH, 'Tr0ub4dor&3 unicode'), { ok: false });
});

test('every argon2 build this CPU can run gives the known answer, each in a process of its own', (t) => {
  const builds: Array<Argon2LevelName | 'portable'> = [
    'portable',
    ...ARGON2_LEVELS.map((l) => l.name).filter((l) => cpuSupports(cpuFlags(), l) && isArgon2LevelBuilt(l)),
  ];
  const script = `const { default: a, argon2Build } = await import('./src/users/argon2.ts');
    const { ARGON2_PARAMS } = await import('./src/users/passwords.ts');
    const binding = process.report.getReport().sharedObjects.find((f) => /argon2[^/]*\\.node$/.test(f));
    console.log(JSON.stringify({ build: argon2Build, binding, hash: await a.hash(${JSON.stringify(KNOWN_PASSWORD)}, { ...ARGON2_PARAMS, salt: Buffer.from(${JSON.stringify(KNOWN_SALT)}) }) }));`;
  for (const build of builds) {
    const out = JSON.parse(
      execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        env: { ...process.env, TESSERA_ARGON2_BUILD: build },
        encoding: 'utf8',
      }),
    );
    t.is(out.build, build);
    t.is(out.hash, KNOWN_HASH, `the ${build} build`);
    // The binary really loaded is the one chosen (a level's own file, or the package's).
    if (build === 'portable') t.notRegex(out.binding, /\.tessera-argon2/);
    else t.is(out.binding, argon2BindingFile(build));
  }
  t.log(`builds checked: ${builds.join(', ')}`);
});

test('this process hashes with the highest level the CPU supports, which npm install built', (t) => {
  if (process.env.TESSERA_ARGON2_BUILD && process.env.TESSERA_ARGON2_BUILD !== 'auto') return t.pass('forced by TESSERA_ARGON2_BUILD');
  const best = pickArgon2Level(cpuFlags(), () => true);
  if (!best) return t.is(argon2Build, 'portable');
  t.true(isArgon2LevelBuilt(best), `npm install (postinstall) should have built argon2 for ${best}: run npm run argon2:build`);
  t.is(argon2Build, best);
});

test('a build is picked only where the CPU has every instruction of its level, and it was built', (t) => {
  const v3 = new Set(ARGON2_LEVELS.find((l) => l.name === 'x86-64-v3')!.cpuFlags);
  const v4 = new Set([...v3, ...ARGON2_LEVELS.find((l) => l.name === 'x86-64-v4')!.cpuFlags]);
  const all = () => true;
  t.is(pickArgon2Level(v4, all, 'x64'), 'x86-64-v4');
  t.is(pickArgon2Level(v3, all, 'x64'), 'x86-64-v3');
  t.is(pickArgon2Level(new Set([...v4].filter((f) => f !== 'avx512bw')), all, 'x64'), 'x86-64-v3');
  t.is(pickArgon2Level(new Set([...v3].filter((f) => f !== 'movbe')), all, 'x64'), undefined);
  t.is(
    pickArgon2Level(v4, (l) => l === 'x86-64-v3', 'x64'),
    'x86-64-v3',
  );
  t.is(
    pickArgon2Level(v4, () => false, 'x64'),
    undefined,
  );
  t.is(pickArgon2Level(v4, all, 'arm64'), undefined);
});

test('TESSERA_ARGON2_BUILD: auto, portable, or a level this CPU has and that was built', (t) => {
  const v3 = new Set(ARGON2_LEVELS.find((l) => l.name === 'x86-64-v3')!.cpuFlags);
  const all = () => true;
  t.is(chooseArgon2Build('auto', v3, all), process.arch === 'x64' ? 'x86-64-v3' : 'portable');
  t.is(chooseArgon2Build('portable', v3, all), 'portable');
  t.throws(() => chooseArgon2Build('fastest', v3, all), { message: /must be auto, portable or one of x86-64-v4, x86-64-v3; got "fastest"/ });
  t.throws(() => chooseArgon2Build('x86-64-v4', v3, all), { message: /this CPU lacks some of its instructions \(avx512f, avx512bw/ });
  if (process.arch === 'x64') t.throws(() => chooseArgon2Build('x86-64-v3', v3, () => false), { message: /npm run argon2:build/ });
});
