import fc from 'fast-check';
import { type Kysely, sql } from 'kysely';
import { unescapeHtml } from './browser.ts';

/**
 * Hostile input for generated tests: a table of named values every test sends, and fast-check
 * arbitraries for more of the same kinds. JSON values may hold `Raw` pieces — JSON text that
 * JSON.stringify can't make (5,000 levels of nesting overflow its stack; `__proto__` keys are
 * dropped from object literals; 1e999).
 */
export class Raw {
  constructor(readonly json: string) {}
  toString() {
    return `Raw(${this.json.length > 60 ? `${this.json.slice(0, 60)}…` : this.json})`;
  }
}

/** JSON text of a value that may contain Raw pieces. */
export function toJson(value: unknown): string {
  if (value instanceof Raw) return value.json;
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export const deepArray = (depth: number) => new Raw('['.repeat(depth) + ']'.repeat(depth));
export const deepObject = (depth: number) => new Raw(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
export const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const SOME_UUID = '0b6c9f5e-2d1a-4c3b-9e8f-7a6b5c4d3e2f';

/** Text that can travel in a URL or a form (a lone surrogate can't: it arrives as U+FFFD). */
export const HOSTILE_TEXT: Array<[name: string, value: string]> = [
  ['NUL', 'a\u0000b'],
  ['NUL in an email address', 'a\u0000b@nul\u0000.fuzz.test'],
  ['10,000 characters', 'x'.repeat(10_000)],
  ['empty', ''],
  ['negative number', '-1'],
  ['date out of range', '-100000-01-01T00:00:00.000Z'],
  ['forged cursor, year -100000', cursorOf(['-100000-01-01T00:00:00.000Z', SOME_UUID])],
  ['forged cursor, not a UUID', cursorOf(['2026-01-01T00:00:00.000Z', "1'; --"])],
  ['__proto__', '__proto__'],
  ['SQL', "'; drop table users; --"],
];

/** Everything of HOSTILE_TEXT, and what only JSON can carry: other types, nesting, lone surrogates. */
export const HOSTILE_JSON: Array<[name: string, value: unknown]> = [
  ...HOSTILE_TEXT,
  ['lone surrogate', 'a\ud800b'],
  ['NUL in a key', { 'a\u0000b': 1 }],
  ['nested 5,000 deep (objects)', deepObject(5000)],
  ['nested 5,000 deep (arrays)', deepArray(5000)],
  ['__proto__ key', new Raw('{"__proto__":{"polluted":"yes"}}')],
  ['constructor.prototype key', new Raw('{"constructor":{"prototype":{"polluted":"yes"}}}')],
  ['null', null],
  ['true', true],
  ['-1', -1],
  ['1e308', 1e308],
  ['1e999 (Infinity when parsed)', new Raw('1e999')],
  ['1.5', 1.5],
  ['empty array', []],
  ['empty object', {}],
];

/** The few that stand for the rest, where the whole table already ran on the same kind of input. */
const CORE = new Set(['NUL', 'NUL in an email address', 'lone surrogate', '10,000 characters', 'null', 'nested 5,000 deep (objects)']);
export const coreOf = <V>(table: Array<[string, V]>) => table.filter(([name]) => CORE.has(name));

const SPECIAL_UNITS = ['\u0000', '\ud800', '\udfff', "'", '"', '\\', '%', '\u202e', '😀', 'é', ' ', '\n'];
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Strings of any UTF-16 code units (or, without `surrogates`, any code points), often the troublesome ones. */
export const hostileString = (opts: { surrogates: boolean }) =>
  fc.oneof(
    fc.string({
      unit: opts.surrogates
        ? fc.oneof(fc.constantFrom(...SPECIAL_UNITS), codeUnit)
        : fc.oneof(fc.constantFrom(...SPECIAL_UNITS.filter((u) => !/^[\ud800-\udfff]$/.test(u))), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
      maxLength: 40,
    }),
    fc.integer({ min: 201, max: 20_000 }).map((n) => 'y'.repeat(n)),
    fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    fc
      .tuple(
        fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.string(),
          fc.integer(),
        ),
        fc.oneof(fc.uuid(), fc.string()),
      )
      .map(cursorOf),
  );

/** Text for URLs and forms. */
export const hostileText = hostileString({ surrogates: false });

/** Any JSON value, often a troublesome one. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  hostileString({ surrogates: true }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.oneof(
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.double(),
    fc.bigInt().map((b) => new Raw(b.toString())),
  ),
  fc.integer({ min: 33, max: 5000 }).chain((d) => fc.constantFrom(deepArray(d), deepObject(d))),
  fc
    .tuple(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.jsonValue({ maxDepth: 2 }))
    .map(([k, v]) => new Raw(`{${JSON.stringify(k)}:${toJson(v)}}`)),
);

/** Short text for a test's message. */
export function describe(value: unknown): string {
  const s = value instanceof Raw ? value.toString() : typeof value === 'string' ? JSON.stringify(value) : toJson(value);
  return s.length > 80 ? `${s.slice(0, 80)}… (${s.length} chars)` : s;
}

/**
 * A digest of everything a refused request must leave as it was: accounts, organizations and all
 * that hangs off them, clients, API tokens, settings, the audit log, and how much mail is queued.
 * Left out: what the mail worker writes on its own, later (its rows' status, the reset and
 * confirmation links it makes — a queued message stands for those), and sessions, interactions
 * and throttling records, which pages and failed sign-ins write by design.
 */
const STORED = [
  'tenants',
  'clients',
  'users',
  'organizations',
  'org_roles',
  'org_members',
  'org_member_roles',
  'org_invitations',
  'org_audit_log',
  'grant_organizations',
  'org_domains',
  'sso_connections',
  'sso_identities',
];
const digestOf = (table: string, row = 'x') => `(select md5(coalesce(string_agg(${row}::text, '|' order by ${row}::text), '')) from ${table} x)`;
const DIGEST_SQL = `select ${[
  ...STORED.map((t) => digestOf(t)),
  // Using an API token stamps its last_used_at.
  digestOf('api_tokens', '(x.id, x.revoked_at)'),
  '(select count(*) from mail_outbox)::text',
].join(" || ',' || ")} as digest`;

/** `db`: the app's own connection (outside a tenant's scope it reads every tenant's rows). */
export async function storedDigest(db: Kysely<any>): Promise<string> {
  return (await sql.raw<{ digest: string }>(DIGEST_SQL).execute(db)).rows[0]!.digest;
}

export interface FoundForm {
  method: 'get' | 'post';
  action: string;
  /** Every named field with the value the page gave it (first option of a select, checked radio). */
  fields: Record<string, string>;
}

/** The forms of a page, read with regular expressions: our templates are regular. */
export function formsIn(html: string): FoundForm[] {
  const forms: FoundForm[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const attrs = m[1]!;
    const method = /method="(get|post)"/i.exec(attrs)?.[1]?.toLowerCase() === 'post' ? 'post' : 'get';
    const action = unescapeHtml(/action="([^"]*)"/.exec(attrs)?.[1] ?? '');
    const fields: Record<string, string> = {};
    for (const f of m[2]!.matchAll(/<input\b([^>]*)>|<select\b([^>]*)>([\s\S]*?)<\/select>|<textarea\b([^>]*)>([\s\S]*?)<\/textarea>/g)) {
      const [, input, select, options, textarea, text] = f;
      const attrs = input ?? select ?? textarea ?? '';
      const name = /\bname="([^"]+)"/.exec(attrs)?.[1];
      if (!name || /\bdisabled\b/.test(attrs)) continue;
      if (select !== undefined) {
        fields[name] = unescapeHtml(/<option[^>]*value="([^"]*)"/.exec(options ?? '')?.[1] ?? '');
      } else if (textarea !== undefined) {
        fields[name] = unescapeHtml(text ?? '');
      } else if (/type="(radio|checkbox)"/.test(attrs)) {
        if (/\bchecked\b/.test(attrs) || !(name in fields)) fields[name] = unescapeHtml(/value="([^"]*)"/.exec(attrs)?.[1] ?? 'on');
      } else {
        fields[name] = unescapeHtml(/value="([^"]*)"/.exec(attrs)?.[1] ?? '');
      }
    }
    forms.push({ method, action, fields });
  }
  return forms;
}
