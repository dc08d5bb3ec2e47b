// Whether this Node.js can run Tessera. Loaded before anything else by bin/tessera.js, so it is
// written for any Node.js that can load an ES module at all: no syntax newer than 2017, no imports.

export const NEEDED = '22.12.0';

/** The versions as numbers, [major, minor, patch]; a missing or odd part counts as 0. */
function parts(version) {
  const numbers = String(version)
    .replace(/^v/, '')
    .split('.')
    .slice(0, 3)
    .map((p) => Number.parseInt(p, 10) || 0);
  while (numbers.length < 3) numbers.push(0);
  return numbers;
}

/** True when `version` (process.versions.node, or `v20.1.0`) is at least NEEDED. */
export function nodeVersionIsEnough(version) {
  const found = parts(version);
  const needed = parts(NEEDED);
  for (let i = 0; i < 3; i++) {
    if (found[i] !== needed[i]) return found[i] > needed[i];
  }
  return true;
}

/** The message for a Node.js too old, naming the found and the needed version; undefined when it is new enough. */
export function nodeVersionProblem(version, executable) {
  if (nodeVersionIsEnough(version)) return undefined;
  const where = executable ? ` (${executable})` : '';
  return (
    `Tessera needs Node.js ${NEEDED} or newer; this is Node.js ${String(version).replace(/^v?/, 'v')}${where}. ` +
    'Install Node.js 22 or 24 LTS (https://nodejs.org/en/download, or `nvm install 22` with nvm), then run the command again.'
  );
}
