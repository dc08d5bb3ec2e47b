import { isUuid } from '../ids.ts';
import { BadRequest } from './errors.ts';

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

export function decodeCursor(cursor: string | undefined): Keyset | undefined {
  if (!cursor) return undefined;
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const createdAt = new Date(at);
    // Every keyset id is a UUID; anything else is forged and would fail the SQL cast (a 500).
    if (typeof id !== 'string' || !isUuid(id) || Number.isNaN(createdAt.getTime())) throw new Error();
    return { createdAt, id };
  } catch {
    throw BadRequest('The cursor is not one this API returned; start again without it.');
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
