import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

// The repository documents itself: every relative link in its documentation must reach a file of
// the repository (a reader of a clone or of the hosted repository has nothing else), and a
// `#heading` must name a heading of that file.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The documentation whose links are checked: the root's documents, docs/ and the bench's README. */
function documents(root: string): string[] {
  const files = ['README.md', 'SECURITY.md', 'CONTRIBUTING.md', 'CHANGELOG.md', 'bench/README.md'].map((f) => join(root, f)).filter((f) => existsSync(f));
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.md')) files.push(path);
    }
  };
  walk(join(root, 'docs'));
  return files;
}

/** Markdown without what can't hold a link: fenced code blocks and inline code spans. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/(`+)[\s\S]*?\1/g, '');
}

/** The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const withoutFences = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const [, text] of withoutFences.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = text!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every link target written in the file's prose: inline links and images, and reference definitions. */
function targets(markdown: string): string[] {
  const text = prose(markdown);
  const found: string[] = [];
  for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) found.push(m[1]!);
  for (const m of text.matchAll(/^[ \t]{0,3}\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+.*)?$/gm)) found.push(m[1]!);
  return found;
}

/** "file: target — why" for each relative link that does not resolve inside `root`. */
function brokenLinks(root: string, files: string[]): string[] {
  const broken: string[] = [];
  const anchorsOf = new Map<string, Set<string>>();
  for (const file of files) {
    const markdown = readFileSync(file, 'utf8');
    for (const target of targets(markdown)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue; // https:, mailto: …
      const [rawPath = '', fragment] = target.split('#', 2) as [string, string | undefined];
      const path = decodeURIComponent(rawPath);
      const resolved = path === '' ? file : path.startsWith('/') ? join(root, path) : resolve(dirname(file), path);
      const where = `${relative(root, file)}: ${target}`;
      if (resolved !== root && !resolved.startsWith(root + sep)) {
        broken.push(`${where} — outside the repository`);
        continue;
      }
      if (!existsSync(resolved)) {
        broken.push(`${where} — no such file`);
        continue;
      }
      if (fragment && resolved.endsWith('.md')) {
        if (!anchorsOf.has(resolved)) anchorsOf.set(resolved, anchors(readFileSync(resolved, 'utf8')));
        if (!anchorsOf.get(resolved)!.has(decodeURIComponent(fragment).toLowerCase())) broken.push(`${where} — no such heading`);
      }
    }
  }
  return broken;
}

test('every relative link in the documentation resolves to a file, and heading, of the repository', (t) => {
  const files = documents(ROOT);
  t.true(files.length > 10, `found only ${files.length} documents`);
  t.deepEqual(brokenLinks(ROOT, files), []);
});

test('the check finds a missing file, a missing heading and a link out of the repository, and ignores code', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'tessera-docs-'));
  mkdirSync(join(root, 'docs'));
  writeFileSync(join(root, 'docs', 'guide.md'), '# A guide\n\n## Run it on PostgreSQL (`DATABASE_URL`)\n\n## Notes\n\n## Notes\n');
  writeFileSync(
    join(root, 'README.md'),
    [
      '[fine](docs/guide.md) [fine too](docs/guide.md#run-it-on-postgresql-database_url) [repeat](docs/guide.md#notes-1)',
      '[self](#top) [web](https://example.com/x.md) [mail](mailto:a@example.com)',
      '[gone](docs/missing.md) [no heading](docs/guide.md#nowhere) [outside](../shared/design/CONTRACT.md)',
      '[ref]: docs/also-missing.md',
      '`[in code](docs/not-checked.md)`',
      '```md\n[in a block](docs/not-checked-either.md)\n```',
      '# Top',
    ].join('\n'),
  );
  t.deepEqual(brokenLinks(root, documents(root)).sort(), [
    'README.md: ../shared/design/CONTRACT.md — outside the repository',
    'README.md: docs/also-missing.md — no such file',
    'README.md: docs/guide.md#nowhere — no such heading',
    'README.md: docs/missing.md — no such file',
  ]);
});
