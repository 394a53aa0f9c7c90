import "server-only";
import { createHash, timingSafeEqual } from "node:crypto";
import { db } from "../db";
import { env } from "../env";
import { bearerToken, plain, type HeaderSource, type PlainAnswer } from "../http/plain";
import { policy } from "../policy/current";
import { isStorableText, ownEntry } from "../text";
import type { TargetDefinition } from "../policy/schema";
import { verifyCredential } from "./verify";

/**
 * Forward-auth for proxies (nginx auth_request, Traefik forwardAuth, HAProxy): is the
 * person behind this request allowed through to this host and path right now? An active
 * grant on a target whose `forwardAuth` entries cover the host and path lets them in.
 */

export type ForwardAuthAnswer = { status: 200; headers: Record<string, string> } | { status: 400 | 401 | 403; reason: string };

const digest = (value: string) => createHash("sha256").update(value).digest();

/** The name of the configured proxy whose secret this is, or null. Compared in constant time. */
export function proxyNamed(secret: string | null): string | null {
  if (!secret) return null;
  const given = digest(secret);
  let match: string | null = null;
  for (const pair of (env().LATCHKEY_FORWARD_AUTH_PROXIES ?? "").split(",")) {
    const at = pair.indexOf("=");
    if (at < 1) continue;
    if (timingSafeEqual(given, digest(pair.slice(at + 1).trim()))) match = pair.slice(0, at).trim();
  }
  return match;
}

export interface OriginalRequest {
  method: string;
  host: string;
  uri: string;
}

/**
 * The path as the upstream will see it: dot segments resolved, repeated slashes collapsed.
 * Null for anything ambiguous (backslashes, encoded slashes, path parameters), which
 * servers disagree about: such a path is never covered.
 */
export function normalisePath(uri: string): string | null {
  const raw = uri.split(/[?#]/)[0] || "/";
  // Servers differ on these: "\\" as "/", "%2F" decoded or not, ";params" stripped (Java) or kept.
  if (!raw.startsWith("/") || /\\|;|%2f|%5c|%00|%3b/i.test(raw)) return null;
  const out: string[] = [];
  for (const segment of raw.replace(/%2e/gi, ".").split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  return `/${out.join("/")}`;
}

function covers(target: TargetDefinition | undefined, host: string, path: string): boolean {
  return (target?.forwardAuth ?? []).some((r) => {
    if (r.host !== host) return false;
    if (r.pathPrefix === "/" || path === r.pathPrefix) return true;
    return path.startsWith(r.pathPrefix.endsWith("/") ? r.pathPrefix : `${r.pathPrefix}/`);
  });
}

/** The targets covering this host and path, by id. */
function coveringTargets(host: string, path: string): string[] {
  return Object.entries(policy().targets)
    .filter(([, t]) => covers(t, host, path))
    .map(([id]) => id);
}

function identityHeaders(user: { email: string; groups: string[] }, grant: { requestId: string; targetId: string; role?: unknown; expiresAt: Date }) {
  return {
    "x-latchkey-user": user.email,
    "x-latchkey-groups": user.groups.join(","),
    "x-latchkey-grant": grant.requestId,
    "x-latchkey-target": grant.targetId,
    ...(typeof grant.role === "string" ? { "x-latchkey-role": grant.role } : {}),
    "x-latchkey-expires": grant.expiresAt.toISOString(),
  };
}

/** Decides for a request presenting a Latchkey credential (Authorization: Bearer) or a portal session. */
export async function forwardAuth(
  original: OriginalRequest,
  identity: { credential?: string; sessionToken?: string },
  now = new Date(),
): Promise<ForwardAuthAnswer> {
  const host = original.host.toLowerCase().replace(/:\d+$/, "");
  if (!host) return { status: 400, reason: "The proxy sent no X-Forwarded-Host." };
  const path = normalisePath(original.uri || "/");
  if (path === null) return { status: 403, reason: "The path is ambiguous (backslashes or encoded slashes); no grant covers it." };

  if (identity.credential) {
    const verified = await verifyCredential(identity.credential, now);
    if (!verified.ok) return { status: 401, reason: verified.reason };
    // The audience is the target the grant is for (verifyCredential checked it against the record).
    const targetId = String(verified.claims.aud);
    if (!covers(ownEntry(policy().targets, targetId), host, path)) {
      return { status: 403, reason: `This credential is for ${targetId}, which does not cover ${host}${path}.` };
    }
    return {
      status: 200,
      headers: identityHeaders(verified.user, { requestId: verified.requestId, targetId, role: verified.claims.role, expiresAt: verified.expiresAt }),
    };
  }

  if (identity.sessionToken) {
    // Anyone behind a proxy can send this cookie: text PostgreSQL cannot compare is no session, not a failed query.
    if (!isStorableText(identity.sessionToken) || identity.sessionToken.length > 512)
      return { status: 401, reason: "The portal session cookie is malformed. Sign in again." };
    const session = await db.session.findUnique({ where: { sessionToken: identity.sessionToken }, include: { user: true } });
    if (!session || session.expires <= now) return { status: 401, reason: "The portal session has ended. Sign in again." };
    const targets = coveringTargets(host, path);
    const grant = targets.length
      ? await db.accessRequest.findFirst({
          where: { requesterId: session.userId, status: "active", targetId: { in: targets }, expiresAt: { gt: now } },
          orderBy: { expiresAt: "desc" },
        })
      : null;
    if (!grant) return { status: 403, reason: `${session.user.email} has no active grant covering ${host}${path}. Request access in Latchkey.` };
    return {
      status: 200,
      headers: identityHeaders(session.user, {
        requestId: grant.id,
        targetId: grant.targetId,
        role: (grant.input as { role?: unknown }).role,
        expiresAt: grant.expiresAt!,
      }),
    };
  }

  return { status: 401, reason: "No credential and no portal session: sign in to Latchkey, or send a credential as Authorization: Bearer." };
}

const SESSION_COOKIES = ["__Secure-next-auth.session-token", "next-auth.session-token"];

function cookie(headers: HeaderSource, name: string): string | undefined {
  for (const part of (headers.get("cookie") ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at > 0 && part.slice(0, at).trim() === name) {
      try {
        return decodeURIComponent(part.slice(at + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * Answers a proxy's sub-request: 2xx with identity headers, 401 (no valid identity) or
 * 403 (an identity without a grant for this host and path). Only configured proxies,
 * which send their shared secret in X-Latchkey-Proxy-Secret, may ask.
 */
export async function answerForwardAuth({ headers: h }: { headers: HeaderSource }): Promise<PlainAnswer> {
  const proxy = proxyNamed(h.get("x-latchkey-proxy-secret"));
  if (!proxy) return plain(403, "Only a proxy configured in LATCHKEY_FORWARD_AUTH_PROXIES may call forward-auth.");
  const bearer = bearerToken(h.get("authorization")) ?? undefined;
  const answer = await forwardAuth(
    { method: h.get("x-forwarded-method") ?? "GET", host: h.get("x-forwarded-host") ?? "", uri: h.get("x-forwarded-uri") ?? "/" },
    { credential: bearer, sessionToken: bearer ? undefined : SESSION_COOKIES.map((n) => cookie(h, n)).find(Boolean) },
  );
  if (answer.status === 200) return plain(200, "ok", answer.headers);
  return plain(answer.status, answer.reason, answer.status === 401 ? { "www-authenticate": 'Bearer realm="latchkey"' } : {});
}
