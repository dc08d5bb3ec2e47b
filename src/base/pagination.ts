import { BadRequest } from './errors.ts';
import { isUuid } from './ids.ts';

/**
 * Opaque keyset cursors: the (created_at, id) of the last row of a page. Keyset rather than
 * offset, so pages stay stable while rows are added.
 */
export interface Keyset {
  createdAt: Date;
  id: string;
}

export function encodeCursor(k: Keyset): string {
  return Buffer.from(JSON.stringify([k.createdAt.toISOString(), k.id])).toString('base64url');
}

/**
 * The dates a cursor may hold: a row's creation time is never outside years 1–9999, and some
 * dates JavaScript can hold (year -100000) PostgreSQL can't, which would fail the query (a 500).
 */
const EARLIEST = Date.parse('0001-01-01T00:00:00Z');
const LATEST = Date.parse('9999-12-31T23:59:59.999Z');

export function decodeCursor(cursor: string | undefined): Keyset | undefined {
  if (!cursor) return undefined;
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const createdAt = new Date(at);
    const time = createdAt.getTime();
    // Every keyset id is a UUID; anything else is forged and would fail the SQL cast (a 500).
    if (typeof at !== 'string' || typeof id !== 'string' || !isUuid(id) || !(time >= EARLIEST && time <= LATEST)) throw new Error();
    return { createdAt, id };
  } catch {
    throw BadRequest('The cursor is not one this API returned; start again without it.', [{ field: 'cursor', message: 'is not a cursor this API returned' }]);
  }
}

/** Given `limit + 1` rows, the page and the cursor of the next one. */
export function page<T>(rows: T[], limit: number, keyOf: (row: T) => Keyset) {
  const data = rows.slice(0, limit);
  const last = data[data.length - 1];
  return {
    data,
    next_cursor: rows.length > limit && last ? encodeCursor(keyOf(last)) : null,
  };
}
