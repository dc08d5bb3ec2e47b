// Frozen in time: never import from src/.
import { domainToASCII, domainToUnicode } from 'node:url';
import { type Kysely, sql } from 'kysely';

// Email keys were lower(email), computed by PostgreSQL, while the application compared with
// JavaScript's case mapping — which disagree (İ is `i` to one and `i + U+0307` to the other) — and
// neither folded ß/ss or ı/i, nor refused invisible or compatibility characters. From here on the
// application computes the key (src/users/email-address.ts) and writes it with every email; the
// columns become ordinary ones, and this migration gives existing rows the same key.
//
// Accounts are one per key. When an existing account's address is one the rule refuses, or two
// accounts' addresses fold to one key, the migration stops and names them (oldest account first):
// which account a person meant is not something to decide here. Their administrators change or
// delete all but one (on the previous version: PATCH or DELETE /users/{id}), then migrate again.
// An invitation to an address the rule refuses keeps no key: no account can accept it.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users ALTER COLUMN email_key DROP EXPRESSION`.execute(db);
  await sql`ALTER TABLE org_invitations ALTER COLUMN email_key DROP EXPRESSION`.execute(db);
  // The unique index comes back once every key is written: midway, a new key may equal an old one.
  await sql`DROP INDEX users_email_key`.execute(db);

  const refused: string[] = [];
  await rekey(db, 'users', (row, problem) => refused.push(`- tenant ${row.slug}: ${account(row)} ${problem}`));
  const shared = await sql<{ slug: string; email_key: string; accounts: Array<Omit<Row, 'created_at' | 'slug'> & { created_at: string }> }>`
    SELECT t.slug, u.email_key, json_agg(json_build_object('id', u.id, 'email', u.email, 'created_at', u.created_at) ORDER BY u.created_at, u.id) AS accounts
    FROM users u JOIN tenants t ON t.id = u.tenant_id
    WHERE u.email_key IS NOT NULL
    GROUP BY t.slug, u.tenant_id, u.email_key
    HAVING count(*) > 1
    ORDER BY t.slug, u.email_key`.execute(db);
  if (refused.length || shared.rows.length) {
    const sameAccount = shared.rows.map(
      (r) => `- tenant ${r.slug}, ${visible(r.email_key)}: ${r.accounts.map((a) => account({ ...a, created_at: new Date(a.created_at) })).join('; ')}`,
    );
    throw new Error(
      [
        'Email addresses must each be one account under the email rule (see the README, "Email addresses"); these are not.',
        ...(refused.length ? ['Addresses the rule refuses:', ...firstFew(refused)] : []),
        ...(sameAccount.length ? ['Addresses that are one account (oldest first):', ...firstFew(sameAccount)] : []),
        'Change or delete these accounts (keep the oldest of each group) with the previous version — PATCH /users/{id} with another email, or DELETE /users/{id} — then migrate again.',
      ].join('\n'),
    );
  }
  await sql`ALTER TABLE users ALTER COLUMN email_key SET NOT NULL`.execute(db);
  await sql`CREATE UNIQUE INDEX users_email_key ON users (tenant_id, email_key)`.execute(db);

  await rekey(db, 'org_invitations', () => {});
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['users', 'org_invitations']) {
    await sql`ALTER TABLE ${sql.table(table)} DROP COLUMN email_key`.execute(db);
    await sql`ALTER TABLE ${sql.table(table)} ADD COLUMN email_key text GENERATED ALWAYS AS (lower(email)) STORED`.execute(db);
  }
  await sql`CREATE UNIQUE INDEX users_email_key ON users (tenant_id, email_key)`.execute(db);
  await sql`CREATE INDEX org_invitations_email_key ON org_invitations (tenant_id, email_key)`.execute(db);
}

const LISTED = 100;
const firstFew = (lines: string[]) => (lines.length > LISTED ? [...lines.slice(0, LISTED), `- … and ${lines.length - LISTED} more`] : lines);
/** An address as someone reading a terminal can tell it apart: what doesn't show is spelt out as \u{…}. */
const visible = (s: string) => JSON.stringify(s).replace(/[^\p{L}\p{N}\p{P}\p{S}\x20]/gu, (ch) => `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase()}}`);
const account = (row: { id: string; email: string; created_at: Date }) => `${visible(row.email)} (user ${row.id}, created ${row.created_at.toISOString()})`;

interface Row {
  tenant_id: string;
  id: string;
  email: string;
  created_at: Date;
  slug: string;
}

const BATCH = 5000;

/**
 * Writes every row's address (trimmed, NFC) and key, batch by batch — most rows (plain ASCII)
 * already hold both; a row whose address the rule refuses gets a null key and is reported.
 */
async function rekey(db: Kysely<any>, table: 'users' | 'org_invitations', onRefused: (row: Row, problem: string) => void) {
  let after: { tenant_id: string; id: string } | undefined;
  for (;;) {
    const { rows } = await sql<Row>`
      SELECT r.tenant_id, r.id, r.email, r.created_at, t.slug
      FROM ${sql.table(table)} r JOIN tenants t ON t.id = r.tenant_id
      WHERE ${after ? sql`(r.tenant_id, r.id) > (${after.tenant_id}::uuid, ${after.id}::uuid)` : sql`true`}
      ORDER BY r.tenant_id, r.id
      LIMIT ${BATCH}`.execute(db);
    if (rows.length === 0) return;
    const values = rows.map((row) => {
      const parsed = parseEmail(row.email);
      if (!parsed.ok) onRefused(row, parsed.problem);
      return { tenant_id: row.tenant_id, id: row.id, email: parsed.ok ? parsed.email.address : row.email, key: parsed.ok ? parsed.email.key : null };
    });
    await sql`
      UPDATE ${sql.table(table)} r SET email = v.email, email_key = v.key
      FROM jsonb_to_recordset(${JSON.stringify(values)}::jsonb) AS v(tenant_id uuid, id uuid, email text, key text)
      WHERE r.tenant_id = v.tenant_id AND r.id = v.id AND (r.email, r.email_key) IS DISTINCT FROM (v.email, v.key)`.execute(db);
    const last = rows[rows.length - 1]!;
    after = { tenant_id: last.tenant_id, id: last.id };
  }
}

// ── the email rule, as src/users/email-address.ts had it when this migration was written ─────────

type EmailParse = { ok: true; email: { address: string; key: string; domain: string } } | { ok: false; problem: string };
type DomainParse = { ok: true; ascii: string; unicode: string } | { ok: false; problem: string };

const MAX_LOCAL_OCTETS = 64;
const MAX_ADDRESS_OCTETS = 254;

const CONTROL = /\p{Cc}/u;
const SPACE = /[\s\p{Z}]/u;
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}]/u;
// Unassigned code points may be given a case mapping or decomposition by a later Unicode version,
// which would change their key under a newer Node.js; private-use ones mean nothing to anyone else.
const NOT_A_CHARACTER = /[\p{Cn}\p{Co}\p{Cs}]/u;
const MARK = /\p{M}/u;
const GENERIC_MARK = /\p{Script=Inherited}/u;
// Scripts where NFC has a precomposed letter for every accent in real use: a mark left over after
// NFC there draws a look-alike (`i` + U+0307). Indic, Thai or Hebrew letters take their vowel
// signs as combining marks, which are part of writing them and stay allowed.
const PRECOMPOSED_SCRIPT = /[\p{Script=Latin}\p{Script=Greek}\p{Script=Cyrillic}\p{Script=Common}]/u;
const LETTER_OR_DIGIT = /[\p{L}\p{M}\p{N}]/u;
/** RFC 5322 atext: the ASCII a dot-atom local part may hold besides dots. */
const ASCII_LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]$/;
const ASCII_DOMAIN = /^[A-Za-z0-9.-]$/;
/** Letters, digits, inner hyphens; at least two labels; a top-level label that starts with a letter. */
const DNS_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;

const codePoint = (ch: string) => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
const octets = (s: string) => new TextEncoder().encode(s).length;
/**
 * One case folding for everyone. Through upper case, ß becomes ss and ı becomes i; lower case
 * first brings ẞ to ß so that it goes on to ss too (with that, folding a folded string changes
 * nothing, for every code point). NFC recomposes what the mappings split.
 */
const fold = (s: string) => s.toLowerCase().toUpperCase().toLowerCase().normalize('NFC');

/** A character that can't be told apart from another (or from nothing) on screen, or undefined. */
function characterProblem(s: string): string | undefined {
  for (const ch of s) {
    if (CONTROL.test(ch)) return `contains a control character (${codePoint(ch)})`;
    if (INVISIBLE.test(ch)) return `contains an invisible character (${codePoint(ch)}); type the address again without it`;
    if (SPACE.test(ch)) return 'contains a space';
    if (NOT_A_CHARACTER.test(ch)) return `contains ${codePoint(ch)}, which is not an assigned character`;
    if (ch.normalize('NFKC') !== ch) return `contains “${ch}” (${codePoint(ch)}), a full-width or other compatibility character; type it plainly`;
  }
  if (s.normalize('NFKC') !== s) return 'contains a compatibility character; type it plainly';
  return undefined;
}

/** The first combining mark that is not part of its letter (see PRECOMPOSED_SCRIPT), or undefined. */
function detachedMark(s: string): string | undefined {
  let base: string | undefined;
  for (const ch of s) {
    if (!MARK.test(ch)) {
      base = ch;
      continue;
    }
    if (GENERIC_MARK.test(ch) || base === undefined || PRECOMPOSED_SCRIPT.test(base)) return ch;
  }
  return undefined;
}

function localProblem(local: string): string | undefined {
  for (const ch of local) {
    if (ch === '.') continue;
    const allowed = ch.length === 1 && ch.charCodeAt(0) < 0x80 ? ASCII_LOCAL.test(ch) : LETTER_OR_DIGIT.test(ch);
    if (!allowed) return `contains “${ch}”, which is not allowed before the @`;
  }
  if (/^\.|\.$|\.\./.test(local)) return 'has a dot at the start or the end of the part before the @, or two dots in a row';
  const mark = detachedMark(local);
  if (mark) return `contains an accent (${codePoint(mark)}) that is not joined to its letter; type the accented letter itself`;
  if (detachedMark(fold(local))) {
    // Case folding split a letter (İ → i + U+0307): name the letter typed.
    const culprit = [...local].find((ch) => !MARK.test(ch) && MARK.test(fold(ch)));
    const which = culprit ? `“${culprit}” (${codePoint(culprit)})` : 'a letter';
    return `contains ${which}, which in lower case is a letter with a separate accent; type the plain letter`;
  }
  return undefined;
}

function domainCharacterProblem(unicode: string): string | undefined {
  for (const ch of unicode) {
    const allowed = ch.length === 1 && ch.charCodeAt(0) < 0x80 ? ASCII_DOMAIN.test(ch) : LETTER_OR_DIGIT.test(ch);
    if (!allowed) return `contains “${ch}”, which is not allowed in a domain name`;
  }
  return undefined;
}

/**
 * A domain name as typed → its IDNA ASCII form (UTS-46, lower case), what organizations' domains
 * are stored as and email keys end with. `problem` reads after "it".
 */
function parseDomain(typed: string): DomainParse {
  const refuse = (problem: string): DomainParse => ({ ok: false, problem });
  const d = typed.trim().normalize('NFC');
  if (!d) return refuse('is empty');
  const chars = characterProblem(d);
  if (chars) return refuse(chars);
  // `example.com.` is the same DNS name as `example.com`, but mail software treats the dot
  // unevenly; refusing it leaves one spelling to store and compare.
  if (d.endsWith('.')) return refuse('ends with a dot; leave the dot out');
  const typedChars = domainCharacterProblem(d);
  if (typedChars) return refuse(typedChars);
  const ascii = domainToASCII(d);
  if (!ascii || !DNS_NAME.test(ascii)) return refuse('is not a domain name such as example.com');
  const unicode = domainToUnicode(ascii);
  // An xn-- label that doesn't decode (or doesn't come back the same) is not a real IDN.
  if (unicode.split('.').some((label) => label.startsWith('xn--')) || domainToASCII(unicode) !== ascii) {
    return refuse('has an xn-- label that is not a valid internationalized name');
  }
  const decodedChars = domainCharacterProblem(unicode) ?? characterProblem(unicode);
  if (decodedChars) return refuse(decodedChars);
  const mark = detachedMark(unicode);
  if (mark) return refuse(`has an accent (${codePoint(mark)}) that is not joined to its letter, a look-alike of another domain`);
  return { ok: true, ascii, unicode };
}

/** A typed email → its address and key, or the problem with it (which reads after "it"). */
function parseEmail(typed: string): EmailParse {
  const refuse = (problem: string): EmailParse => ({ ok: false, problem });
  const address = typed.trim().normalize('NFC');
  if (!address) return refuse('is empty');
  const chars = characterProblem(address);
  if (chars) return refuse(chars);
  const parts = address.split('@');
  if (parts.length === 1) return refuse('has no @');
  if (parts.length > 2) return refuse('contains more than one @');
  const [local, domainTyped] = parts as [string, string];
  if (!local) return refuse('has nothing before the @');
  if (!domainTyped) return refuse('has no domain after the @');
  const localIssue = localProblem(local);
  if (localIssue) return refuse(localIssue);
  const domain = parseDomain(domainTyped);
  if (!domain.ok) return refuse(`has a domain that ${domain.problem}`);
  const foldedLocal = fold(local);
  if (octets(foldedLocal) > MAX_LOCAL_OCTETS) return refuse(`is too long: the part before the @ may be at most ${MAX_LOCAL_OCTETS} bytes`);
  const key = `${foldedLocal}@${domain.ascii}`;
  if (octets(key) > MAX_ADDRESS_OCTETS) return refuse(`is too long: an address may be at most ${MAX_ADDRESS_OCTETS} bytes`);
  return { ok: true, email: { address, key, domain: domain.ascii } };
}
