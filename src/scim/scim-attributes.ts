import { z } from 'zod';
import { SCHEMA } from './scim-discovery.ts';
import { InvalidSyntax, InvalidValue, scimError } from './scim-errors.ts';

/**
 * The attributes the SCIM endpoint serves, and the one gate every write passes before any object
 * walk or merge (scim-patch included): a PATCH path names only these attributes (and their
 * sub-attributes), a value carries no key that reaches an object's prototype, read-only attributes
 * are not written, and what is stored has the shape RFC 7643 gives the attribute. Everything a
 * directory sends is untrusted: it is refused with a 400 naming the attribute, never a 500.
 */

const MAX_TEXT = 256;

/** Keys that walk to Object.prototype in JavaScript; never a SCIM attribute, never accepted. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** A boolean as directories send it: true/false, or Entra's "True"/"False" strings. */
const scimBool = z.preprocess((v) => (typeof v === 'string' && /^(true|false)$/i.test(v) ? v.toLowerCase() === 'true' : v), z.boolean());
const text = z.string().max(MAX_TEXT);
/** Optional attributes: a directory may send null for "not set". */
const opt = <T extends z.ZodType>(schema: T) => schema.nullish();

/** A multi-valued attribute's entry (RFC 7643 §2.4): a string value, its type, display and primary flag. */
const entry = z.object({
  value: z.string().max(2048),
  display: opt(text),
  type: opt(text),
  primary: opt(scimBool),
});
const entries = z.array(entry).max(100);
const address = z.object({
  formatted: opt(z.string().max(1024)),
  streetAddress: opt(z.string().max(1024)),
  locality: opt(text),
  region: opt(text),
  postalCode: opt(text),
  country: opt(text),
  type: opt(text),
  primary: opt(scimBool),
});

interface Attribute {
  /** What a stored value must look like (zod strips sub-attributes it does not know). */
  shape: z.ZodType;
  /** Sub-attributes a path may name (`name.givenName`, `emails[type eq "work"].value`). */
  sub?: readonly string[];
  /** Not written by a directory (RFC 7643 mutability readOnly): ignored in a body, refused in a PATCH. */
  readOnly?: boolean;
}

const ENTRY_SUB = ['value', 'display', 'type', 'primary'] as const;
const multi: Attribute = { shape: entries, sub: ENTRY_SUB };
const plain: Attribute = { shape: text };
const readOnly: Attribute = { shape: z.unknown(), readOnly: true };

/** RFC 7643 §4.1: the core User attributes (userName and active are columns, read by scim-resources). */
const USER: Record<string, Attribute> = {
  id: readOnly,
  meta: readOnly,
  schemas: readOnly,
  groups: readOnly,
  userName: plain,
  externalId: plain,
  active: { shape: scimBool },
  password: { shape: z.unknown() },
  name: {
    shape: z.object({
      formatted: opt(text),
      familyName: opt(text),
      givenName: opt(text),
      middleName: opt(text),
      honorificPrefix: opt(text),
      honorificSuffix: opt(text),
    }),
    sub: ['formatted', 'familyName', 'givenName', 'middleName', 'honorificPrefix', 'honorificSuffix'],
  },
  displayName: plain,
  nickName: plain,
  profileUrl: { shape: z.string().max(2048) },
  title: plain,
  userType: plain,
  preferredLanguage: plain,
  locale: plain,
  timezone: plain,
  emails: multi,
  phoneNumbers: multi,
  ims: multi,
  photos: multi,
  addresses: { shape: z.array(address).max(100), sub: ['formatted', 'streetAddress', 'locality', 'region', 'postalCode', 'country', 'type', 'primary'] },
  entitlements: multi,
  roles: multi,
  x509Certificates: { shape: z.array(entry.extend({ value: z.string().max(16384) })).max(20), sub: ENTRY_SUB },
};

/** Entra sends a manager as its id alone; it is kept as the complex attribute RFC 7643 §4.3 defines. */
const manager = z.preprocess(
  (v) => (typeof v === 'string' ? { value: v } : v),
  z.object({ value: opt(text), $ref: opt(z.string().max(2048)), displayName: opt(text) }),
);

/** RFC 7643 §4.3: the enterprise User extension. */
const ENTERPRISE: Record<string, Attribute> = {
  employeeNumber: plain,
  costCenter: plain,
  organization: plain,
  division: plain,
  department: plain,
  manager: { shape: manager, sub: ['value', '$ref', 'displayName'] },
};

/** RFC 7643 §4.2, as the Group endpoint serves it: members are this directory's users, by id. */
const GROUP: Record<string, Attribute> = {
  id: readOnly,
  meta: readOnly,
  schemas: readOnly,
  displayName: plain,
  externalId: plain,
  members: {
    shape: z.array(z.object({ value: z.string().max(MAX_TEXT), display: opt(text), $ref: opt(z.string().max(2048)), type: opt(text) })).max(100_000),
    sub: ['value', 'display', '$ref', 'type'],
  },
};

export type ResourceKind = 'User' | 'Group';

const find = (attrs: Record<string, Attribute>, name: string): [string, Attribute] | undefined => {
  const key = Object.keys(attrs).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : [key, attrs[key]!];
};

const invalidPath = (detail: string) => scimError(400, 'invalidPath', detail);
const mutability = (name: string) => scimError(400, 'mutability', `"${name}" is read-only: the service provider sets it.`);

/** Refuses a key that walks to a prototype, at any depth of a value a directory sent. */
export function assertNoPrototypeKeys(value: unknown, where: string, depth = 0): void {
  if (depth > 32) throw InvalidValue(`${where} is nested too deeply.`);
  if (Array.isArray(value)) {
    for (const item of value) assertNoPrototypeKeys(item, where, depth + 1);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const key of Object.keys(value)) {
    // A key may be a path itself (`name.givenName` in a PATCH value): each of its parts counts.
    if (key.split(/[.:[\]\s]/).some((part) => PROTOTYPE_KEYS.has(part.toLowerCase())))
      throw InvalidValue(`${where}: "${key.slice(0, 60)}" is not an attribute.`);
    assertNoPrototypeKeys((value as Record<string, unknown>)[key], where, depth + 1);
  }
}

/** A PATCH path resolved against the attributes served: the top-level attribute it writes. */
interface Target {
  /** `name`, `emails`, or `urn:…:enterprise:2.0:User` for the extension's attributes. */
  attribute: string;
  /** The attribute the path names (`manager` for `urn:…:enterprise:2.0:User:manager`) when it names no sub-attribute. */
  whole?: string;
}

const OPERATORS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'lt', 'ge', 'le', 'pr', 'and', 'or', 'not', 'true', 'false', 'null']);

/** The attribute names a value filter (`[type eq "work"]`) compares; each must be a sub-attribute. */
function checkValueFilter(filter: string, attribute: string, sub: readonly string[]) {
  const withoutStrings = filter.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  if (/"[^"]*$/.test(withoutStrings.replace(/""/g, ''))) throw invalidPath(`The filter of "${attribute}" has an unclosed string.`);
  for (const [word] of withoutStrings.matchAll(/[A-Za-z_$][\w$.:-]*/g)) {
    if (OPERATORS.has(word.toLowerCase())) continue;
    if (!sub.some((s) => s.toLowerCase() === word.toLowerCase()))
      throw invalidPath(`"${attribute}[${filter.slice(0, 80)}]" compares "${word.slice(0, 60)}", which is not a sub-attribute of ${attribute}.`);
  }
}

/**
 * A PATCH path (RFC 7644 §3.5.2: attrPath or valuePath, with an optional sub-attribute), checked
 * against the attributes served before anything follows it. Read-only attributes are refused.
 */
export function checkPath(kind: ResourceKind, path: string): Target {
  if (path.length > 512) throw invalidPath('The path is too long.');
  let rest = path.trim();
  let attrs = kind === 'User' ? USER : GROUP;
  const core = kind === 'User' ? SCHEMA.user : SCHEMA.group;
  let extension = false;
  if (rest.toLowerCase().startsWith(`${core.toLowerCase()}:`)) rest = rest.slice(core.length + 1);
  else if (kind === 'User' && rest.toLowerCase() === SCHEMA.enterpriseUser.toLowerCase()) return { attribute: SCHEMA.enterpriseUser };
  else if (kind === 'User' && rest.toLowerCase().startsWith(`${SCHEMA.enterpriseUser.toLowerCase()}:`)) {
    rest = rest.slice(SCHEMA.enterpriseUser.length + 1);
    attrs = ENTERPRISE;
    extension = true;
  } else if (/^urn:/i.test(rest)) throw invalidPath(`"${path.slice(0, 120)}": the schema is not one this endpoint serves.`);
  const parsed = /^([A-Za-z$][\w$-]*)(?:\[(.*)\])?(?:\.([A-Za-z$][\w$-]*))?$/s.exec(rest);
  if (!parsed) throw invalidPath(`"${path.slice(0, 120)}" is not a valid attribute path.`);
  const [, name, filter, subName] = parsed as unknown as [string, string, string | undefined, string | undefined];
  if (PROTOTYPE_KEYS.has(name.toLowerCase())) throw invalidPath(`"${name}" is not an attribute.`);
  const found = find(attrs, name);
  if (!found) throw invalidPath(`"${name.slice(0, 60)}" is not an attribute of the ${extension ? 'enterprise User extension' : kind}.`);
  const [canonical, attribute] = found;
  if (attribute.readOnly) throw mutability(canonical);
  if ((filter !== undefined || subName !== undefined) && !attribute.sub) throw invalidPath(`"${canonical}" has no sub-attributes.`);
  if (filter !== undefined) checkValueFilter(filter, canonical, attribute.sub!);
  if (subName !== undefined && !attribute.sub!.some((s) => s.toLowerCase() === subName.toLowerCase()))
    throw invalidPath(`"${subName.slice(0, 60)}" is not a sub-attribute of ${canonical}.`);
  return { attribute: extension ? SCHEMA.enterpriseUser : canonical, ...(filter === undefined && subName === undefined ? { whole: canonical } : {}) };
}

/** A PATCH operation as the endpoint accepts it: its op in lower case, its path checked. */
export interface PatchOperation {
  op: 'add' | 'replace' | 'remove';
  path?: string;
  value?: unknown;
}

/**
 * The Operations of a PATCH body, checked before anything applies them: an array of add, replace
 * or remove (any case); a path naming a served, writable attribute; a value where the op needs
 * one, without prototype keys; a value without path is an object of served attributes. Answers
 * the operations and the top-level attributes they write, whose shapes the caller checks after.
 */
export function readPatch(kind: ResourceKind, body: unknown, resourceId: string): { operations: PatchOperation[]; touched: Set<string> } {
  const container = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  const ops = container && Object.hasOwn(container, 'Operations') ? container.Operations : container?.operations;
  if (!Array.isArray(ops) || ops.length === 0)
    throw InvalidSyntax('A PATCH body is { "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [ … ] }.');
  if (ops.length > 1000) throw InvalidValue('At most 1000 operations per PATCH.');
  const touched = new Set<string>();
  const operations = ops.map((raw, i): PatchOperation => {
    const where = `Operation ${i + 1}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw InvalidSyntax(`${where} must be an object: { "op", "path", "value" }.`);
    const o = raw as Record<string, unknown>;
    const op = typeof o.op === 'string' ? o.op.toLowerCase() : undefined;
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw InvalidSyntax('Each operation has "op": "add", "replace" or "remove" (any case).');
    if (o.path !== undefined && typeof o.path !== 'string') throw invalidPath('"path" must be a string.');
    const path = typeof o.path === 'string' && o.path.trim() !== '' ? o.path : undefined;
    assertNoPrototypeKeys(o.value, `${where}'s value`);
    if (op !== 'remove' && o.value === undefined) throw InvalidValue(`${where} (${op}) needs a "value".`);
    if (path !== undefined) {
      const target = checkPath(kind, path);
      touched.add(target.attribute);
      // Entra sends a manager as its id alone; as the complex attribute, it merges with the one stored.
      const value = target.attribute === SCHEMA.enterpriseUser && target.whole === 'manager' && typeof o.value === 'string' ? { value: o.value } : o.value;
      return { op, path, ...(value !== undefined ? { value } : {}) };
    }
    if (op === 'remove') throw scimError(400, 'noTarget', `${where}: a remove needs a "path".`);
    if (typeof o.value !== 'object' || o.value === null || Array.isArray(o.value))
      throw InvalidValue(`${where} has no path: its value must be an object of attributes.`);
    // Okta repeats the resource's own id in such a value; it changes nothing and is left out.
    const value = Object.fromEntries(
      Object.entries(o.value).filter(([k, v]) => !(k.toLowerCase() === 'id' && typeof v === 'string' && v.toLowerCase() === resourceId.toLowerCase())),
    );
    for (const key of Object.keys(value)) {
      // A key of a value without a path is an attribute (`name.givenName` and URN-prefixed names
      // included), never a value filter: the patch engine would store `emails[type eq "x"]` as a
      // key of its own.
      if (key.includes('[') || key.includes(']'))
        throw invalidPath(`${where} has no path: "${key.slice(0, 100)}" names no attribute (a value filter needs "path").`);
      touched.add(checkPath(kind, key).attribute);
    }
    return { op, value };
  });
  return { operations, touched };
}

const issueText = (error: z.ZodError) => {
  const issue = error.issues[0]!;
  const at = issue.path.length ? ` (at ${issue.path.map(String).join('.')})` : '';
  return `${issue.message}${at}`;
};

/**
 * The served attributes of a User or Group, checked against their RFC 7643 shapes and returned
 * as zod read them (unknown sub-attributes dropped, "True"/"False" as booleans). `only` limits the
 * check to the attributes a PATCH wrote: what was stored before stays as it was, readable.
 * Attributes outside what is served are left out of a new or replaced resource.
 */
export function checkAttributes(kind: ResourceKind, resource: Record<string, unknown>, only?: Set<string>): Record<string, unknown> {
  const attrs = kind === 'User' ? USER : GROUP;
  const out: Record<string, unknown> = Object.create(null);
  for (const [key, value] of Object.entries(resource)) {
    const extension = kind === 'User' && key.toLowerCase() === SCHEMA.enterpriseUser.toLowerCase();
    const found = extension ? undefined : find(attrs, key);
    const name = extension ? SCHEMA.enterpriseUser : found?.[0];
    if (name === undefined) {
      // Not served: dropped from what a directory sends in full, kept as stored when a PATCH did not write it.
      if (only) out[key] = value;
      continue;
    }
    if ((only && !only.has(name)) || value === null || value === undefined || found?.[1].readOnly) {
      if (value !== null && value !== undefined) out[name] = value;
      continue;
    }
    out[name] = extension ? checkEnterprise(value) : shaped(name, found![1].shape, value);
  }
  return out;
}

function shaped(name: string, shape: z.ZodType, value: unknown) {
  const result = shape.safeParse(value);
  if (!result.success) throw InvalidValue(`"${name}" is not a valid ${name}: ${issueText(result.error)}.`);
  return result.data;
}

function checkEnterprise(value: unknown) {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw InvalidValue(`"${SCHEMA.enterpriseUser}" must be an object of its attributes.`);
  const out: Record<string, unknown> = Object.create(null);
  for (const [key, v] of Object.entries(value)) {
    const found = find(ENTERPRISE, key);
    if (!found || v === null || v === undefined) continue;
    out[found[0]] = shaped(`${SCHEMA.enterpriseUser}:${found[0]}`, found[1].shape, v);
  }
  return out;
}
