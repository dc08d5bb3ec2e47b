import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * argon2's prebuilt binary is compiled for any x86-64 CPU (SSE2 only); the same C code built for
 * a newer instruction-set level hashes ~35 % faster (AVX2 rotations and wider lanes in the BLAKE2b
 * rounds), and a sign-in's CPU is mostly that hash. `npm install` therefore also builds the
 * binding for the levels below (scripts/argon2-build.ts), and at start the highest level this CPU
 * supports is loaded. Levels are psABI's x86-64 micro-architecture levels, named as gcc's -march
 * takes them; the flags are how /proc/cpuinfo names each level's features. The hashes are the same
 * byte for byte whichever build computes them (test/unit/passwords.test.ts holds a known answer).
 */
export const ARGON2_LEVELS = [
  { name: 'x86-64-v4', cpuFlags: ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'] },
  { name: 'x86-64-v3', cpuFlags: ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'] },
] as const;

export type Argon2LevelName = (typeof ARGON2_LEVELS)[number]['name'];

/** TESSERA_ARGON2_BUILD asks for a build this machine can't load: the process stops with its message. */
export class Argon2BuildError extends Error {
  override name = 'Argon2BuildError';
}

const require = createRequire(import.meta.url);

/** Beside the argon2 package, in the same node_modules, so removing node_modules removes them. */
export function argon2BuildDir(level: Argon2LevelName): string {
  return path.join(path.dirname(require.resolve('argon2/package.json')), '..', '.tessera-argon2', level);
}

/** The compiled binding of a level's build, where node-gyp-build looks for it. */
export function argon2BindingFile(level: Argon2LevelName): string {
  return path.join(argon2BuildDir(level), 'build', 'Release', 'argon2.node');
}

/** Feature flags of this CPU, from /proc/cpuinfo; empty where there is none (not Linux). */
export function cpuFlags(): Set<string> {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m);
    return new Set(line ? line[1]!.trim().split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

/** The features of `level` this CPU lacks (by /proc/cpuinfo's names). */
export function missingCpuFlags(flags: ReadonlySet<string>, level: Argon2LevelName): string[] {
  return ARGON2_LEVELS.find((l) => l.name === level)!.cpuFlags.filter((f) => !flags.has(f));
}

/** Whether this CPU has every feature of `level`: one missing and the binary dies with SIGILL. */
export function cpuSupports(flags: ReadonlySet<string>, level: Argon2LevelName, arch = process.arch): boolean {
  return arch === 'x64' && missingCpuFlags(flags, level).length === 0;
}

/**
 * The highest level that this CPU supports and that was built; undefined means argon2's own
 * portable binary. Decided per start from the CPU's flags, because images move between CPU types.
 */
export function pickArgon2Level(flags: ReadonlySet<string>, built: (level: Argon2LevelName) => boolean, arch = process.arch): Argon2LevelName | undefined {
  return ARGON2_LEVELS.find((level) => cpuSupports(flags, level.name, arch) && built(level.name))?.name;
}

export function isArgon2LevelBuilt(level: Argon2LevelName): boolean {
  return existsSync(argon2BindingFile(level));
}
