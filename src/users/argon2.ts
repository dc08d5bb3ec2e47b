import { createRequire } from 'node:module';
import {
  ARGON2_LEVELS,
  Argon2BuildError,
  type Argon2LevelName,
  argon2BuildDir,
  cpuFlags,
  cpuSupports,
  isArgon2LevelBuilt,
  missingCpuFlags,
  pickArgon2Level,
} from './argon2-builds.ts';

/**
 * The argon2 module, with its native binding chosen for this CPU (see argon2-builds.ts). Every use
 * of argon2 imports it from here: the binding is picked when the package is first loaded, so a
 * plain `import 'argon2'` elsewhere, loaded first, would fix the portable one for the process.
 */
export type Argon2Build = Argon2LevelName | 'portable' | 'ARGON2_PREBUILD';

/**
 * TESSERA_ARGON2_BUILD: `auto` (default) takes the highest level this CPU supports that was built;
 * `portable` forces argon2's own prebuilt binary; a level name forces that level, and refuses to
 * start where the CPU lacks it or it wasn't built. An ARGON2_PREBUILD set by the operator
 * (node-gyp-build's own override) wins over all of these.
 */
export function chooseArgon2Build(wanted = process.env.TESSERA_ARGON2_BUILD ?? 'auto', flags = cpuFlags(), built = isArgon2LevelBuilt): Argon2Build {
  if (process.env.ARGON2_PREBUILD) return 'ARGON2_PREBUILD';
  if (wanted === 'auto' || wanted === '') return pickArgon2Level(flags, built) ?? 'portable';
  if (wanted === 'portable') return 'portable';
  const level = ARGON2_LEVELS.find((l) => l.name === wanted)?.name;
  if (!level)
    throw new Argon2BuildError(`TESSERA_ARGON2_BUILD must be auto, portable or one of ${ARGON2_LEVELS.map((l) => l.name).join(', ')}; got "${wanted}"`);
  if (!cpuSupports(flags, level))
    throw new Argon2BuildError(
      `TESSERA_ARGON2_BUILD=${level}: this CPU lacks some of its instructions (${missingCpuFlags(flags, level).join(', ') || process.arch}); use auto`,
    );
  if (!built(level)) throw new Argon2BuildError(`TESSERA_ARGON2_BUILD=${level}: that build is missing; run \`npm run argon2:build\``);
  return level;
}

export const argon2Build = chooseArgon2Build();

function load(): typeof import('argon2') {
  const require = createRequire(import.meta.url);
  if (argon2Build === 'portable' || argon2Build === 'ARGON2_PREBUILD') return require('argon2');
  // node-gyp-build reads <PACKAGE>_PREBUILD while the package loads, and nothing after.
  process.env.ARGON2_PREBUILD = argon2BuildDir(argon2Build);
  try {
    return require('argon2');
  } finally {
    delete process.env.ARGON2_PREBUILD;
  }
}

const argon2 = load();
export default argon2;
