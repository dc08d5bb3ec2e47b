import { domainToASCII, domainToUnicode } from 'node:url';

/**
 * The one rule for what an email address is, and when two spellings are the same account.
 *
 * Every comparison — accounts, invitations, SSO routing by domain, brute-force counters — uses
 * `key`, computed here and nowhere else (not by PostgreSQL: its lower() and JavaScript's case
 * mapping disagree, İ becoming `i` in one and `i̇` in the other). What a person could not tell
 * apart from another address is refused rather than guessed at: invisible characters, full-width
 * and other compatibility forms, accents not joined to their letter. What remains folds to one key.
 *
 * Imports nothing of the application, so that the migration that backfilled keys could copy it.
 */

export interface EmailAddress {
  /** What is stored and mailed to: the address as typed, trimmed and in Unicode NFC. */
  address: string;
  /** What every comparison uses: the part before the @ case-folded, the domain in lower-case IDNA ASCII. */
  key: string;
  /** The key's domain (IDNA ASCII, lower case), as organizations' domains are stored. */
  domain: string;
}

export type EmailParse = { ok: true; email: EmailAddress } | { ok: false; problem: string };
export type DomainParse = { ok: true; ascii: string; unicode: string } | { ok: false; problem: string };

/** A typed address the rule refuses; `problem` reads after "it" ("contains a space"). */
export class EmailRefused extends Error {
  override name = 'EmailRefused';
  constructor(
    readonly typed: string,
    readonly problem: string,
  ) {
    super(`${JSON.stringify(typed)} is not a usable email address: it ${problem}.`);
  }
}

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
export function parseDomain(typed: string): DomainParse {
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
export function parseEmail(typed: string): EmailParse {
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

/** Like parseEmail, for input already validated (a stored address, a checked form): refusal throws. */
export function canonicalEmail(typed: string): EmailAddress {
  const parsed = parseEmail(typed);
  if (!parsed.ok) throw new EmailRefused(typed, parsed.problem);
  return parsed.email;
}

/** The key `typed` is compared by, or undefined when the rule refuses it (it then matches nothing). */
export function emailKey(typed: string): string | undefined {
  const parsed = parseEmail(typed);
  return parsed.ok ? parsed.email.key : undefined;
}
