/** Every id Tessera generates for rows (tenants, users, organizations, …) is a UUID. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Checked before an id from a URL or a token reaches SQL: a malformed one is simply "not found". */
export const isUuid = (value: string): boolean => UUID.test(value);
