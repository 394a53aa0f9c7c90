import "server-only";
import { createHash, randomBytes } from "node:crypto";
import type { ApiToken, TokenKind } from "@prisma/client";
import { z } from "zod";
import { actorOf, recordEvent } from "../audit/record";
import { db } from "../db";
import { sql, sqlRow } from "../db/sql";
import { changeGeneration, changesLive, keepIfUnchanged, onChange } from "../db/changes";
import { fieldErrorsOf, forbidden, invalid, notFound } from "../errors";
import { policy } from "../policy/current";
import { rolesForGroups, type Principal } from "../policy/evaluate";

/**
 * API tokens for automation: personal tokens act as the person who made them, service
 * tokens as a service identity an admin made. The secret is shown once; only its SHA-256
 * is stored. Scopes narrow what a token may do on top of its identity's roles.
 */

export const SCOPES = {
  "requests:read": "See the workflows you may request, your requests and their status.",
  "requests:write": "Create and cancel requests.",
  "credentials:read": "Receive the credential of an approved request, once.",
  "approvals:write": "Approve or reject requests (needs the approver role).",
  introspect: "Ask whether a Latchkey credential is active (RFC 7662), for resource servers.",
  scim: "Provision people and groups from the identity provider (SCIM 2.0 at /scim/v2); a token with it has no other scope.",
} as const;

export type Scope = keyof typeof SCOPES;
export const SCOPE_NAMES = Object.keys(SCOPES) as Scope[];

const MAX_DAYS: Record<TokenKind, number> = { personal: 90, service: 365 };

export const tokenRequestSchema = z.object({
  name: z.string().trim().min(1, "Name the token after what will use it.").max(80),
  scopes: z.array(z.enum(SCOPE_NAMES as [Scope, ...Scope[]])).min(1, "Choose at least one scope."),
  expiresInDays: z.coerce.number().int("Whole days only.").min(1, "At least one day.").max(365),
});
export type TokenRequest = z.infer<typeof tokenRequestSchema>;

const hashOf = (token: string) => createHash("sha256").update(token).digest("hex");

function newSecret(kind: TokenKind): string {
  return `lk${kind === "personal" ? "p" : "s"}_${randomBytes(32).toString("base64url")}`;
}

function mayHaveScope(kind: TokenKind, roles: readonly string[], requestOnly: boolean, scope: Scope): string | null {
  if (scope === "approvals:write" && requestOnly) return "approvals:write cannot be given to a request-only service identity: it may never approve.";
  if (scope === "approvals:write" && !roles.includes("approver")) return "approvals:write needs the approver role.";
  if (scope === "introspect" && kind === "personal") return "introspect is for service tokens of resource servers.";
  if (scope === "scim" && kind === "personal") return "scim is for a service token of the identity provider.";
  return null;
}

async function issue(who: Principal, owner: { id: string; email: string; groups: string[]; requestOnly: boolean }, kind: TokenKind, input: TokenRequest) {
  if (input.expiresInDays > MAX_DAYS[kind]) {
    throw invalid(`A ${kind} token lasts at most ${MAX_DAYS[kind]} days.`, { expiresInDays: `At most ${MAX_DAYS[kind]} days.` });
  }
  const roles = rolesForGroups(policy(), owner.groups);
  // The directory's token can change anyone's groups, so it does nothing else (and nothing else does that).
  if (input.scopes.includes("scim") && new Set(input.scopes).size > 1)
    throw invalid("scim cannot be combined with other scopes.", { scopes: "scim cannot be combined with other scopes." });
  for (const scope of input.scopes) {
    const refusal = mayHaveScope(kind, roles, owner.requestOnly, scope);
    if (refusal) throw invalid(refusal, { scopes: refusal });
  }
  const secret = newSecret(kind);
  const expiresAt = new Date(Date.now() + input.expiresInDays * 86_400_000);
  const token = await db.$transaction(async (tx) => {
    const row = await tx.apiToken.create({
      data: {
        kind,
        name: input.name,
        prefix: secret.slice(0, 12),
        tokenHash: hashOf(secret),
        userId: owner.id,
        scopes: [...new Set(input.scopes)],
        expiresAt,
        createdById: who.id,
      },
    });
    await recordEvent(tx, {
      actor: actorOf(who),
      action: "token.created",
      data: { tokenId: row.id, kind, name: row.name, owner: owner.email, scopes: row.scopes, expiresAt: expiresAt.toISOString() },
    });
    return row;
  });
  return { secret, token: publicView(token) };
}

/** A person makes a token for themselves. A token cannot make tokens. */
export async function createPersonalToken(who: Principal, raw: unknown) {
  if (who.via) throw forbidden("API tokens are made in the portal, not with another token.");
  const input = parse(raw);
  const user = await db.user.findUniqueOrThrow({ where: { id: who.id } });
  return issue(who, user, "personal", input);
}

/** An admin makes a token for a service identity. */
export async function createServiceToken(who: Principal, serviceId: string, raw: unknown) {
  if (who.via || !who.roles.includes("admin")) throw forbidden("Only an admin, signed in to the portal, can make service tokens.");
  const input = parse(raw);
  const service = await db.user.findUnique({ where: { id: serviceId } });
  if (!service || service.kind !== "service") throw notFound("Service identity");
  return issue(who, service, "service", input);
}

function parse(raw: unknown): TokenRequest {
  const parsed = tokenRequestSchema.safeParse(raw);
  if (!parsed.success) throw invalid("Some fields need attention.", fieldErrorsOf(parsed.error.issues));
  return parsed.data;
}

/** The owner revokes their token; an admin revokes any. Idempotent. */
export async function revokeToken(who: Principal, tokenId: string): Promise<void> {
  await db.$transaction(async (tx) => {
    const token = await tx.apiToken.findUnique({ where: { id: tokenId }, include: { user: { select: { email: true } } } });
    if (!token || (token.userId !== who.id && !who.roles.includes("admin"))) throw notFound("Token");
    if (token.revokedAt) return;
    await tx.apiToken.update({ where: { id: tokenId }, data: { revokedAt: new Date() } });
    await recordEvent(tx, { actor: actorOf(who), action: "token.revoked", data: { tokenId, kind: token.kind, name: token.name, owner: token.user.email } });
  });
}

export function publicView(token: ApiToken) {
  const { tokenHash: _hash, ...rest } = token;
  return { ...rest, state: token.revokedAt ? "revoked" : token.expiresAt <= new Date() ? "expired" : "active" } as const;
}

export async function tokensOf(userId: string) {
  const rows = await db.apiToken.findMany({ where: { userId }, orderBy: { createdAt: "desc" } });
  return rows.map(publicView);
}

export type TokenAuthentication = { ok: true; who: Principal } | { ok: false; reason: string };

type KnownToken = Pick<ApiToken, "id" | "kind" | "scopes" | "expiresAt" | "revokedAt" | "lastUsedAt" | "lastUsedIp"> & {
  user: { id: string; email: string; groups: string[]; requestOnly: boolean; active: boolean };
};

/**
 * Tokens read recently, by hash, so that automation calling often costs no query to
 * authenticate. Kept only while changes are heard (lib/db/changes.ts): revoking a token or
 * changing its identity's groups removes it as the change commits; never kept over 30 s.
 * Each is kept for a time of its own between 20 and 30 s (tokenKeptFor): tokens first used
 * together (a fleet of automation starting, every caller after a restart) would otherwise all
 * be read again at the same moment, every 30 s, and the burst of reads (with their last-use
 * writes, lastUseDue) stalled every call in flight at once (bench:approvals' tail episodes).
 */
const TOKEN_CACHE_MS = 30_000;
export const tokenKeptFor = () => Math.round(TOKEN_CACHE_MS * (2 / 3 + Math.random() / 3));

/**
 * Last use is recorded at most once a minute per token, and a token's minute is its own: 60 to
 * 90 s after the last record, by its hash, so that tokens first used together do not all write
 * at the same moment every minute.
 */
export function lastUseDue(hash: string, lastUsedAt: Date | null, now: Date): boolean {
  if (!lastUsedAt) return true;
  return now.getTime() - lastUsedAt.getTime() > 60_000 + (parseInt(hash.slice(0, 8), 16) % 30_000);
}
const known = new Map<string, { value: KnownToken; until: number }>();

onChange((kind, id) => {
  if (kind === "*") return known.clear();
  if (kind !== "token" && kind !== "user") return;
  for (const [hash, { value: token }] of known) if ((kind === "token" ? token.id : token.user.id) === id) known.delete(hash);
});

type KnownTokenRow = Omit<KnownToken, "user"> & { userId: string; email: string; groups: string[]; requestOnly: boolean; active: boolean };

/**
 * A token by its hash, with what authenticating by it needs of its identity: one statement
 * through the driver (lib/db/sql.ts), a fifth of Prisma's cost, as every token is read again
 * at least every 30 s and a fleet of callers after a pause reads them all at once.
 */
async function tokenByHash(hash: string): Promise<KnownToken | null> {
  const hit = changesLive() ? known.get(hash) : undefined;
  if (hit && hit.until > Date.now()) return hit.value;
  const generation = changeGeneration();
  const row = await sqlRow<KnownTokenRow>(
    db,
    sql`SELECT t.id, t.kind, t.scopes, t."expiresAt", t."revokedAt", t."lastUsedAt", t."lastUsedIp",
          u.id AS "userId", u.email, u.groups, u."requestOnly", u.active
        FROM "ApiToken" t JOIN "User" u ON u.id = t."userId" WHERE t."tokenHash" = ${hash}`,
  );
  if (!row) return null;
  const { userId, email, groups, requestOnly, active, ...rest } = row;
  const token: KnownToken = { ...rest, user: { id: userId, email, groups, requestOnly, active } };
  keepIfUnchanged(known, hash, token, generation, tokenKeptFor());
  return token;
}

/**
 * Who an API token speaks for. Roles come from the identity's groups through the current
 * policy (a policy change reaches tokens at once); scopes travel with the principal.
 */
export async function authenticateToken(secret: string, address?: string): Promise<TokenAuthentication> {
  if (!/^lk[ps]_[\w-]{43}$/.test(secret)) return { ok: false, reason: "That is not a Latchkey API token." };
  const hash = hashOf(secret);
  const token = await tokenByHash(hash);
  if (!token) return { ok: false, reason: "Unknown API token." };
  if (token.revokedAt) return { ok: false, reason: "This API token was revoked." };
  // Deactivation revokes the tokens too; this holds even for a token that slipped past that.
  if (!token.user.active) return { ok: false, reason: "The identity this API token speaks for was deactivated." };
  const now = new Date();
  if (token.expiresAt <= now) return { ok: false, reason: "This API token has expired." };
  // Last use is recorded, at most once a minute per token (lastUseDue), so busy automation does not write on every call.
  if (lastUseDue(hash, token.lastUsedAt, now) || token.lastUsedIp !== (address ?? null)) {
    token.lastUsedAt = now;
    token.lastUsedIp = address ?? null;
    await db.$executeRaw`UPDATE "ApiToken" SET "lastUsedAt" = ${now}, "lastUsedIp" = ${address ?? null} WHERE id = ${token.id}`;
  }
  const { user } = token;
  return {
    ok: true,
    who: {
      id: user.id,
      email: user.email,
      groups: user.groups,
      roles: rolesForGroups(policy(), user.groups),
      via: { kind: token.kind === "personal" ? "personal_token" : "service_token", tokenId: token.id, scopes: token.scopes },
      requestOnly: user.requestOnly,
    },
  };
}
