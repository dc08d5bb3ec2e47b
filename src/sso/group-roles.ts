/**
 * The roles an IdP's groups map to, by a connection's `group_roles`. A plain own-property lookup:
 * a group named `__proto__`, `constructor` or `toString` maps to nothing unless the mapping itself
 * names it. `owner` is never granted this way (configuration refuses it too; this keeps a mapping
 * stored before that rule harmless).
 */
export function mappedRoles(groupRoles: Record<string, unknown> | null | undefined, groups: readonly string[] | undefined): string[] {
  if (!groupRoles || !groups?.length) return [];
  const roles = new Set<string>();
  for (const group of groups) {
    if (!Object.hasOwn(groupRoles, group)) continue;
    const role = groupRoles[group];
    if (typeof role === 'string' && role !== 'owner') roles.add(role);
  }
  return [...roles];
}
