/**
 * Reads the groups claim from an ID token or userinfo answer. IdPs differ: a list of names
 * (Okta, Keycloak, Entra ID), or one string. A string is split on commas only, because
 * group names may contain spaces: "engineering, Platform Admins" is the two groups
 * "engineering" and "Platform Admins", and "Platform Admins" alone is one group (splitting
 * on spaces would turn it into groups named "Platform" and "Admins", which the policy may
 * map to roles nobody meant to give). Nested paths like "realm_access.roles" are followed.
 */
export function claimValue(claims: Record<string, unknown>, claim: string): unknown {
  const value: unknown = claims[claim];
  if (value !== undefined || !claim.includes(".")) return value;
  return claim.split(".").reduce<unknown>((node, key) => (node && typeof node === "object" ? (node as Record<string, unknown>)[key] : undefined), claims);
}

export function groupsFromClaims(claims: Record<string, unknown>, claim: string): string[] {
  const value = claimValue(claims, claim);
  const list = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : [];
  return [...new Set(list.filter((g): g is string => typeof g === "string" && g.trim() !== "").map((g) => g.trim()))].sort();
}
