import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { DIRECTORY_PROVIDERS_GUIDES, fillStep, SSO_PROVIDERS } from '../../src/setup-links/providers.ts';

const guide = (name: string) => fileURLToPath(new URL(`../../docs/guides/${name}`, import.meta.url));

test('every provider names a guide that exists and is listed in the guides index', (t) => {
  const index = readFileSync(guide('README.md'), 'utf8');
  for (const p of [...SSO_PROVIDERS, ...DIRECTORY_PROVIDERS_GUIDES]) {
    t.true(existsSync(guide(p.guide)), `${p.id}: docs/guides/${p.guide}`);
    t.true(index.includes(`(${p.guide})`), `${p.guide} in docs/guides/README.md`);
  }
});

test('each SSO provider gives the IdP exactly the values its protocol needs; each pushing directory its base URL', (t) => {
  for (const p of SSO_PROVIDERS) {
    const text = p.steps.join('\n');
    if (p.protocol === 'saml') {
      t.true(text.includes('{acs_url}') && text.includes('{entity_id}'), p.id);
      t.false(text.includes('{redirect_uri}'), p.id);
    } else {
      t.true(text.includes('{redirect_uri}'), p.id);
      t.false(text.includes('{acs_url}'), p.id);
    }
  }
  for (const d of DIRECTORY_PROVIDERS_GUIDES) t.is(d.pushes, d.steps.join('\n').includes('{scim_base_url}'), d.id);
});

test('a step becomes text and values; no placeholder is left unfilled', (t) => {
  t.deepEqual(fillStep('ACS URL: {acs_url} (POST).', { acs_url: 'https://x/acs' }), [
    { text: 'ACS URL: ' },
    { value: 'https://x/acs', name: 'acs_url' },
    { text: ' (POST).' },
  ]);
  const values = { acs_url: 'a', entity_id: 'e', metadata_url: 'm', redirect_uri: 'r', scim_base_url: 's' };
  for (const step of [...SSO_PROVIDERS, ...DIRECTORY_PROVIDERS_GUIDES].flatMap((p) => p.steps)) {
    const text = fillStep(step, values)
      .map((part) => ('text' in part ? part.text : part.value))
      .join('');
    t.false(/\{[a-z_]+\}/.test(text), step);
  }
});
