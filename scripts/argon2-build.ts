/**
 * Builds argon2's native binding for each x86-64 level in ARGON2_LEVELS (see
 * src/users/argon2-builds.ts, which also picks the build at start), so that a CPU which has those
 * instructions hashes passwords with them. Runs after `npm install` (package.json "postinstall";
 * `npm run argon2:build` again by hand). Best effort: where a level can't be built (no compiler,
 * no Node headers, another architecture) Tessera uses argon2's portable binary, which is correct
 * everywhere and only slower — so a failure warns and exits 0.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ARGON2_LEVELS, type Argon2LevelName, argon2BindingFile, argon2BuildDir } from '../src/users/argon2-builds.ts';

const require = createRequire(import.meta.url);

/** npm passes its bundled node-gyp to lifecycle scripts; by hand, the one installed beside npm. */
function nodeGyp(): string[] {
  if (process.env.npm_config_node_gyp) return [process.execPath, process.env.npm_config_node_gyp];
  return ['npx', '--no-install', 'node-gyp'];
}

function buildLevel(level: Argon2LevelName, source: string): void {
  const target = argon2BuildDir(level);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const part of ['package.json', 'binding.gyp', 'argon2.cpp', 'argon2']) {
    cpSync(path.join(source, part), path.join(target, part), { recursive: true });
  }
  const [command, ...args] = nodeGyp();
  const started = performance.now();
  const run = spawnSync(command!, [...args, 'rebuild', '--release'], {
    cwd: target,
    // CFLAGS reach the C core (the hashing); the C++ glue is not hot.
    env: { ...process.env, CFLAGS: `${process.env.CFLAGS ?? ''} -march=${level}`.trim() },
    encoding: 'utf8',
  });
  if (run.status !== 0) {
    const output = `${run.stdout ?? ''}${run.stderr ?? ''}${run.error?.message ?? ''}`.trim().split('\n').slice(-15).join('\n');
    console.warn(`tessera: argon2 for ${level} was not built; the portable build will be used.\n${output}`);
    rmSync(target, { recursive: true, force: true });
    return;
  }
  // Keep the binding, drop the object files and copied sources (a few MB).
  const binding = argon2BindingFile(level);
  rmSync(path.join(target, 'build', 'Release', 'obj.target'), { recursive: true, force: true });
  rmSync(path.join(target, 'argon2'), { recursive: true, force: true });
  console.log(`tessera: built argon2 for ${level} in ${((performance.now() - started) / 1000).toFixed(1)} s (${binding})`);
}

if (process.arch !== 'x64' || process.platform === 'win32') {
  console.log(`tessera: argon2's portable build is used on ${process.platform}-${process.arch}; nothing to build`);
} else {
  try {
    const source = path.dirname(require.resolve('argon2/package.json'));
    for (const level of ARGON2_LEVELS) buildLevel(level.name, source);
  } catch (err) {
    // Never fail `npm install` over an optimisation.
    console.warn(`tessera: argon2's faster builds were skipped (${(err as Error).message}); the portable build will be used`);
  }
}
