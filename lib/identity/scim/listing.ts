/**
 * What every SCIM list and read shares: paging by startIndex and count (RFC 7644 §3.4.2.4),
 * the ListResponse envelope, `meta`, and the `attributes` / `excludedAttributes` parameters
 * (Entra reads groups with `excludedAttributes=members`).
 */
import { env } from "../../env";
import { invalidValue } from "./errors";

export const LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
export const DEFAULT_COUNT = 100;
export const MAX_COUNT = 200;

export interface ListQuery {
  filter?: string;
  startIndex: number;
  count: number;
  attributes: string[] | null;
  excluded: string[];
}

function integer(raw: string | null, name: string, fallback: number): number {
  if (raw === null || raw === "") return fallback;
  if (!/^-?\d{1,9}$/.test(raw.trim())) throw invalidValue(`${name} must be a whole number.`);
  return Number(raw.trim());
}

const names = (raw: string | null) =>
  raw
    ? raw
        .split(",")
        .map((a) => a.trim().toLowerCase())
        .filter(Boolean)
    : [];

export function listQuery(url: URL): ListQuery {
  const params = url.searchParams;
  for (const key of ["filter", "startIndex", "count"]) if (params.getAll(key).length > 1) throw invalidValue(`Send ${key} once.`);
  // RFC 7644: a startIndex below 1 counts as 1, a negative count as 0.
  const startIndex = Math.max(1, integer(params.get("startIndex"), "startIndex", 1));
  const count = Math.min(MAX_COUNT, Math.max(0, integer(params.get("count"), "count", DEFAULT_COUNT)));
  const filter = params.get("filter") ?? undefined;
  return { filter, startIndex, count, ...projection(url) };
}

export function projection(url: URL): { attributes: string[] | null; excluded: string[] } {
  const attributes = names(url.searchParams.get("attributes"));
  return { attributes: attributes.length ? attributes : null, excluded: names(url.searchParams.get("excludedAttributes")) };
}

/** Keeps what `attributes` asks for (id and schemas always), drops what `excludedAttributes` names. */
export function project(
  resource: Record<string, unknown>,
  { attributes, excluded }: { attributes: string[] | null; excluded: string[] },
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resource)) {
    const lower = key.toLowerCase();
    const always = lower === "id" || lower === "schemas";
    if (!always && attributes && !attributes.some((a) => a === lower || a.startsWith(`${lower}.`) || a.endsWith(`:${lower}`))) continue;
    if (!always && excluded.includes(lower)) continue;
    out[key] = value;
  }
  return out;
}

export function listResponse(resources: Record<string, unknown>[], total: number, startIndex: number) {
  return { schemas: [LIST_RESPONSE], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}

export function location(kind: "Users" | "Groups", id: string): string {
  return `${env().NEXTAUTH_URL.replace(/\/$/, "")}/scim/v2/${kind}/${id}`;
}

export function meta(kind: "User" | "Group", id: string, created: Date, lastModified: Date) {
  return {
    resourceType: kind,
    created: created.toISOString(),
    lastModified: lastModified.toISOString(),
    location: location(kind === "User" ? "Users" : "Groups", id),
    version: `W/"${lastModified.getTime()}"`,
  };
}
