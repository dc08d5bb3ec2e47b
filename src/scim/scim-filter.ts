import { type RawBuilder, sql } from 'kysely';
import { type Filter, parse } from 'scim2-parse-filter';
import { InvalidFilter } from './scim-errors.ts';

/**
 * SCIM filters (RFC 7644 §3.4.2.2) as SQL. scim2-parse-filter reads the text into a tree; each
 * attribute a directory may filter on is a column (or a jsonb path) described below, every value
 * is a bound parameter, and anything else — an attribute or an operator not listed — is refused
 * with 400 `invalidFilter` rather than answered with a guess.
 */

type Op = 'eq' | 'co' | 'sw' | 'pr' | 'gt' | 'lt' | 'ge' | 'le';

/** How one filterable attribute is compared. */
export type FilterAttribute =
  /** Text; `caseExact: false` compares without regard to case. `key` turns a value into what the column stores. */
  | { kind: 'text'; column: RawBuilder<unknown>; caseExact: boolean; key?: (v: string) => string }
  /** A uuid column: only `eq` (an id that is not a uuid matches nothing). */
  | { kind: 'id'; column: RawBuilder<unknown> }
  | { kind: 'time'; column: RawBuilder<unknown> }
  | { kind: 'boolean'; column: RawBuilder<unknown> }
  /** A multi-valued attribute: the condition on one of its values, built by the resource. */
  | { kind: 'values'; where: (op: Op, value: string | undefined) => RawBuilder<boolean>; ops: readonly Op[] };

/** Attribute names lower-cased, without the core schema's URN prefix; sub-attributes dotted. */
export type FilterAttributes = Record<string, FilterAttribute>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CORE_PREFIX = /^urn:ietf:params:scim:schemas:core:2\.0:(user|group):/i;

/** Filters longer than this are not from a directory's provisioning: refused before parsing. */
const MAX_FILTER_LENGTH = 2000;

const likeEscape = (v: string) => v.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The WHERE condition of `text`, or 400 invalidFilter naming what is not supported. */
export function filterToSql(text: string, attributes: FilterAttributes): RawBuilder<boolean> {
  if (text.length > MAX_FILTER_LENGTH) throw InvalidFilter(`The filter is longer than ${MAX_FILTER_LENGTH} characters.`);
  let tree: Filter;
  try {
    tree = parse(text);
  } catch (err) {
    throw InvalidFilter(`The filter could not be read: ${(err as Error).message}`.slice(0, 300));
  }
  return translate(tree, attributes, 0);
}

function translate(f: Filter, attributes: FilterAttributes, depth: number): RawBuilder<boolean> {
  if (depth > 20) throw InvalidFilter('The filter nests too deeply.');
  switch (f.op) {
    case 'and':
    case 'or': {
      const parts = f.filters.map((g) => translate(g, attributes, depth + 1));
      return sql<boolean>`(${sql.join(parts, sql.raw(f.op === 'and' ? ' and ' : ' or '))})`;
    }
    case '[]': {
      // attr[sub op value] — only multi-valued attributes whose sub-attribute is listed as `attr.sub`.
      const inner = f.valFilter;
      if (!('attrPath' in inner) || inner.op === '[]') throw InvalidFilter(`Only one comparison is supported inside ${f.attrPath}[…].`);
      return compare(`${f.attrPath}.${inner.attrPath}`, inner.op, 'compValue' in inner ? inner.compValue : undefined, attributes);
    }
    case 'not':
      throw InvalidFilter('The "not" operator is not supported.');
    default:
      return compare(f.attrPath, f.op, 'compValue' in f ? f.compValue : undefined, attributes);
  }
}

function compare(path: string, op: string, value: unknown, attributes: FilterAttributes): RawBuilder<boolean> {
  const name = path.replace(CORE_PREFIX, '').toLowerCase();
  // Own properties only: `__proto__` or `constructor` must name nothing, not Object's prototype.
  const own = (key: string) => (Object.hasOwn(attributes, key) ? attributes[key] : undefined);
  const attr = own(name) ?? (name.endsWith('.value') ? undefined : own(`${name}.value`));
  if (!attr) throw InvalidFilter(`Filtering on "${path}" is not supported. Supported: ${Object.keys(attributes).join(', ')}.`);
  const unsupported = () => InvalidFilter(`The operator "${op}" is not supported on "${path}".`);
  if (op === 'pr') {
    if (attr.kind === 'values') {
      if (!attr.ops.includes('pr')) throw unsupported();
      return attr.where('pr', undefined);
    }
    return sql<boolean>`${attr.column} is not null`;
  }
  const needs = (type: 'string' | 'boolean') => {
    if (typeof value !== type) throw InvalidFilter(`"${path}" is compared with a ${type === 'string' ? 'quoted string' : 'true or false'}.`);
  };
  switch (attr.kind) {
    case 'text': {
      needs('string');
      const v = attr.key ? attr.key(value as string) : (value as string);
      const col = attr.caseExact || attr.key ? attr.column : sql`lower(${attr.column})`;
      const val = attr.caseExact || attr.key ? v : v.toLowerCase();
      if (op === 'eq') return sql<boolean>`${col} = ${val}`;
      if (op === 'co') return sql<boolean>`${col} like ${`%${likeEscape(val)}%`}`;
      if (op === 'sw') return sql<boolean>`${col} like ${`${likeEscape(val)}%`}`;
      throw unsupported();
    }
    case 'id':
      if (op !== 'eq') throw unsupported();
      needs('string');
      return UUID.test(value as string) ? sql<boolean>`${attr.column} = ${value as string}::uuid` : sql<boolean>`false`;
    case 'boolean':
      if (op !== 'eq') throw unsupported();
      needs('boolean');
      return sql<boolean>`${attr.column} = ${value as boolean}`;
    case 'time': {
      needs('string');
      const at = new Date(value as string);
      if (Number.isNaN(at.getTime())) throw InvalidFilter(`"${path}" is compared with a date-time such as "2026-01-31T12:00:00Z".`);
      const sqlOp = { eq: '=', gt: '>', lt: '<', ge: '>=', le: '<=' }[op as 'eq'];
      if (!sqlOp) throw unsupported();
      return sql<boolean>`${attr.column} ${sql.raw(sqlOp)} ${at}`;
    }
    case 'values':
      if (!attr.ops.includes(op as Op)) throw unsupported();
      needs('string');
      return attr.where(op as Op, value as string);
  }
}

/** A `values` condition over a jsonb array of objects whose `value` is compared without regard to case. */
export function jsonbValues(array: RawBuilder<unknown>): FilterAttribute {
  return {
    kind: 'values',
    ops: ['eq', 'co', 'sw', 'pr'],
    where: (op, value) => {
      const elements = sql`jsonb_array_elements(case when jsonb_typeof(${array}) = 'array' then ${array} else '[]'::jsonb end)`;
      const v = (value ?? '').toLowerCase();
      const cond =
        op === 'pr'
          ? sql`e->>'value' is not null`
          : op === 'eq'
            ? sql`lower(e->>'value') = ${v}`
            : sql`lower(e->>'value') like ${op === 'co' ? `%${likeEscape(v)}%` : `${likeEscape(v)}%`}`;
      return sql<boolean>`exists (select 1 from ${elements} as e where ${cond})`;
    },
  };
}
