/**
 * Reads the groups claim from an ID token or userinfo profile. IdPs differ: a list of
 * names (Okta, Keycloak), a single string, or a comma/space separated string.
 * Nested paths like "realm_access.roles" are followed.
 */
export function groupsFromClaims(claims: Record<string, unknown>, claim: string): string[] {
  let value: unknown = claims[claim];
  if (value === undefined && claim.includes(".")) {
    value = claim.split(".").reduce<unknown>((node, key) => (node && typeof node === "object" ? (node as Record<string, unknown>)[key] : undefined), claims);
  }
  const list = Array.isArray(value) ? value : typeof value === "string" ? value.split(/[\s,]+/) : [];
  return [...new Set(list.filter((g): g is string => typeof g === "string" && g.trim() !== "").map((g) => g.trim()))].sort();
}
