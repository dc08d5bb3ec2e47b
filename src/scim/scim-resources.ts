import type { Selectable } from 'kysely';
import { type EmailAddress, parseEmail } from '../users/email-address.ts';
import type { ScimGroupTable, ScimUserTable } from './scim.table.ts';
import { assertNoPrototypeKeys, checkAttributes } from './scim-attributes.ts';
import { SCHEMA } from './scim-discovery.ts';
import { InvalidValue } from './scim-errors.ts';

/**
 * The SCIM resources as a directory writes and reads them: a request body read into what
 * Tessera keeps (and refused with `invalidValue` when it can't be), and a stored row shown back.
 */

export type ScimUserRow = Selectable<ScimUserTable>;
export type ScimGroupRow = Selectable<ScimGroupTable>;

/** What a User body asks for. */
export interface UserInput {
  userName: string;
  userNameKey: string;
  externalId: string | null;
  active: boolean;
  /** Everything else the directory sent, kept and returned as sent (but for the password). */
  resource: Record<string, unknown>;
  /** The account's email: the primary (else work, else first) email, else a userName that is one. */
  email: EmailAddress | undefined;
  emailProblem: string | undefined;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
}

export interface GroupInput {
  displayName: string;
  externalId: string | null;
  /** SCIM ids of the directory's users, as sent (checked against the directory by the caller). */
  members: string[];
}

const MAX_TEXT = 256;

/** userName compared without regard to case (RFC 7643: caseExact false), as the column stores it. */
export const userNameKey = (userName: string) => userName.normalize('NFC').toLowerCase();

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A boolean as directories send it: true/false, or Entra's "True"/"False" strings. */
export function scimBoolean(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw InvalidValue(`"${field}" must be true or false.`);
}

function text(body: Record<string, unknown>, field: string, required: boolean): string | null {
  const v = body[field];
  if (v === undefined || v === null || v === '') {
    if (required) throw InvalidValue(`"${field}" is required.`);
    return null;
  }
  if (typeof v !== 'string') throw InvalidValue(`"${field}" must be a string.`);
  if (v.length > MAX_TEXT) throw InvalidValue(`"${field}" may be at most ${MAX_TEXT} characters.`);
  if (required && !v.trim()) throw InvalidValue(`"${field}" must not be blank.`);
  return v;
}

/**
 * What a body may hold, in one pass: no key that reaches a prototype (at any depth), the served
 * attributes under their canonical names (SCIM names are case-insensitive: `username` is
 * `userName`) in their RFC 7643 shapes. `only`: a PATCH's result, checked where the PATCH wrote.
 */
function servedAttributes(kind: 'User' | 'Group', raw: Record<string, unknown>, only?: Set<string>) {
  assertNoPrototypeKeys(raw, `The ${kind}`);
  return checkAttributes(kind, raw, only);
}

/** The email the account is keyed by: primary, else work, else the first; else a userName that is an address. */
function accountEmail(emails: unknown, userName: string): { email?: EmailAddress; problem?: string } {
  const list = Array.isArray(emails) ? emails.filter((e): e is Record<string, unknown> => isObject(e) && typeof e.value === 'string' && e.value !== '') : [];
  const isPrimary = (e: Record<string, unknown>) => e.primary === true || (typeof e.primary === 'string' && e.primary.toLowerCase() === 'true');
  const chosen = list.find(isPrimary) ?? list.find((e) => typeof e.type === 'string' && e.type.toLowerCase() === 'work') ?? list[0];
  const typed = chosen ? (chosen.value as string) : userName.includes('@') ? userName : undefined;
  if (typed === undefined) return { problem: 'The user has no email: send "emails" (a primary or work address), or a userName that is an email address.' };
  const parsed = parseEmail(typed);
  return parsed.ok ? { email: parsed.email } : { problem: `The email "${typed.slice(0, 100)}" ${parsed.problem}.` };
}

const NOT_STORED = new Set(['id', 'meta', 'password', 'groups', 'userName', 'externalId', 'active']);

/** A User as sent (POST, PUT) or as a PATCH left it (`patched`: the attributes it wrote, checked). */
export function readUser(raw: unknown, patched?: Set<string>): UserInput {
  if (!isObject(raw)) throw InvalidValue('The body must be a JSON object: a SCIM User.');
  const body = servedAttributes('User', raw, patched);
  const userName = text(body, 'userName', true)!;
  const externalId = text(body, 'externalId', false);
  const active = body.active === undefined || body.active === null ? true : scimBoolean(body.active, 'active');
  const name = isObject(body.name) ? body.name : {};
  const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim().slice(0, MAX_TEXT) : null);
  const givenName = str(name.givenName);
  const familyName = str(name.familyName);
  const display = str(body.displayName) ?? str(name.formatted) ?? ([givenName, familyName].filter(Boolean).join(' ') || null);
  const resource = Object.fromEntries(Object.entries(body).filter(([k]) => !NOT_STORED.has(k)));
  if (!Array.isArray(resource.schemas) || !resource.schemas.every((v) => typeof v === 'string')) resource.schemas = [SCHEMA.user];
  const { email, problem } = accountEmail(body.emails, userName);
  return { userName, userNameKey: userNameKey(userName), externalId, active, resource, email, emailProblem: problem, name: display, givenName, familyName };
}

export function readGroup(raw: unknown): GroupInput {
  if (!isObject(raw)) throw InvalidValue('The body must be a JSON object: a SCIM Group.');
  const body = servedAttributes('Group', raw);
  const displayName = text(body, 'displayName', true)!;
  const externalId = text(body, 'externalId', false);
  const members = body.members ?? [];
  if (!Array.isArray(members)) throw InvalidValue('"members" must be an array of { "value": "<user id>" }.');
  const ids = members.map((m) => {
    const value = isObject(m) ? m.value : undefined;
    if (typeof value !== 'string' || !value) throw InvalidValue('Each member must be { "value": "<user id>" }.');
    return value;
  });
  return { displayName, externalId, members: [...new Set(ids)] };
}

/** W/"<version>": the resource's ETag and meta.version. */
export const etag = (version: number) => `W/"${version}"`;

export function presentUser(row: ScimUserRow, base: string) {
  return {
    ...row.resource,
    schemas: Array.isArray(row.resource.schemas) ? row.resource.schemas : [SCHEMA.user],
    id: row.id,
    ...(row.external_id !== null ? { externalId: row.external_id } : {}),
    userName: row.user_name,
    active: row.active,
    meta: {
      resourceType: 'User',
      created: row.created_at.toISOString(),
      lastModified: row.updated_at.toISOString(),
      location: `${base}/Users/${row.id}`,
      version: etag(row.version),
    },
  };
}

export function presentGroup(row: ScimGroupRow, base: string, members: Array<{ id: string; user_name: string }> | undefined) {
  return {
    schemas: [SCHEMA.group],
    id: row.id,
    ...(row.external_id !== null ? { externalId: row.external_id } : {}),
    displayName: row.display_name,
    ...(members ? { members: members.map((m) => ({ value: m.id, display: m.user_name, $ref: `${base}/Users/${m.id}`, type: 'User' })) } : {}),
    meta: {
      resourceType: 'Group',
      created: row.created_at.toISOString(),
      lastModified: row.updated_at.toISOString(),
      location: `${base}/Groups/${row.id}`,
      version: etag(row.version),
    },
  };
}

/**
 * `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) on top-level attributes; `id` and
 * `schemas` are always returned. Sub-attribute paths select their top-level attribute.
 */
export function projection(attributes: string | undefined, excluded: string | undefined) {
  const names = (v: string | undefined) =>
    v
      ? v
          .split(',')
          .map((s) => {
            const path = s.trim().replace(/^urn:ietf:params:scim:schemas:core:2\.0:(user|group):/i, '');
            // An extension's attribute (urn:…:enterprise:2.0:User:department) selects the extension.
            return (/^urn:/i.test(path) ? path : path.split('.')[0]!).toLowerCase();
          })
          .filter(Boolean)
      : [];
  const only = names(attributes);
  const drop = names(excluded);
  const keep = (key: string) => {
    const k = key.toLowerCase();
    if (k === 'id' || k === 'schemas') return true;
    const named = (list: string[]) => list.some((n) => n === k || n.startsWith(`${k}:`));
    if (only.length) return named(only);
    return !named(drop);
  };
  return {
    /** Whether `name` is returned: a caller skips reading what is dropped (a big group's members). */
    wants: keep,
    apply: <T extends Record<string, unknown>>(resource: T) => Object.fromEntries(Object.entries(resource).filter(([k]) => keep(k))),
  };
}
