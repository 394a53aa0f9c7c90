import "server-only";
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";
import { recordEvent } from "../audit/record";
import { db } from "../db";
import { logger } from "../log";
import { ConfigError, env, type Env } from "../env";
import { rolesForGroups, type Principal } from "../policy/evaluate";
import { policy } from "../policy/current";
import type { Role } from "../policy/schema";
import { applyDirectoryChange } from "../identity/directory";
import { groupsFromClaims } from "./groups";

/**
 * Sign-in behind an identity-aware proxy (LATCHKEY_AUTH_MODE=trusted-proxy). The proxy
 * signs people in; every request carries its signed assertion, which is verified here
 * against the proxy's published keys, issuer, audience and expiry. Unsigned identity
 * headers (X-Forwarded-Email and the like) are never read: anyone who can reach Latchkey
 * without the proxy could set them.
 */

type ProxyKind = Env["LATCHKEY_PROXY_KIND"];

const PROXIES: Record<ProxyKind, { name: string; header?: string }> = {
  "google-iap": { name: "Google Cloud IAP", header: "x-goog-iap-jwt-assertion" },
  "cloudflare-access": { name: "Cloudflare Access", header: "cf-access-jwt-assertion" },
  pomerium: { name: "Pomerium", header: "x-pomerium-jwt-assertion" },
  // --pass-authorization-header sends the IdP's ID token as "Authorization: Bearer <token>".
  "oauth2-proxy": { name: "OAuth2 Proxy", header: "authorization" },
  custom: { name: "your identity-aware proxy" },
};

/** Public-key signatures only: with "none" or an HMAC (HS*) anyone who knows the "key" (or no one) could mint an identity. */
const PUBLIC_KEY_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];

/** A person stays signed in, without a new audit event, this long after their last recorded sign-in. */
const SIGN_IN_RECORDED_FOR_MS = 8 * 60 * 60 * 1000;

export interface ProxySettings {
  kind: ProxyKind;
  name: string;
  header: string;
  jwksUrl: string;
  issuer: string;
  audience: string;
  emailClaim: string;
  groupsClaim: string;
  algorithms: string[];
}

/** The proxy configuration in force; a config that would accept forgeable assertions is refused, naming the variable. */
export function proxySettings(e: Env = env()): ProxySettings {
  const proxy = PROXIES[e.LATCHKEY_PROXY_KIND];
  const header = (e.LATCHKEY_PROXY_HEADER ?? proxy.header)?.toLowerCase();
  if (!header) {
    throw new ConfigError(
      "Invalid configuration:\n  LATCHKEY_PROXY_HEADER: is not set (required when LATCHKEY_PROXY_KIND is custom: name the header carrying the proxy's signed assertion)",
    );
  }
  return {
    kind: e.LATCHKEY_PROXY_KIND,
    name: proxy.name,
    header,
    jwksUrl: e.LATCHKEY_PROXY_JWKS_URL!,
    issuer: e.LATCHKEY_PROXY_ISSUER!,
    audience: e.LATCHKEY_PROXY_AUDIENCE!,
    emailClaim: e.LATCHKEY_PROXY_EMAIL_CLAIM,
    groupsClaim: e.LATCHKEY_PROXY_GROUPS_CLAIM,
    algorithms: algorithmsFrom(e.LATCHKEY_PROXY_ALGORITHMS),
  };
}

function algorithmsFrom(value: string): string[] {
  const algorithms = value
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
  const refused = algorithms.filter((a) => !PUBLIC_KEY_ALGORITHMS.includes(a));
  if (algorithms.length === 0 || refused.length > 0) {
    const what = refused.length > 0 ? `${refused.map((a) => `"${a}"`).join(", ")} is not allowed` : "is empty";
    throw new ConfigError(
      `Invalid configuration:\n  LATCHKEY_PROXY_ALGORITHMS: ${what}: the proxy's assertion must carry a public-key signature (${PUBLIC_KEY_ALGORITHMS.join(", ")}); "none" and HS* are never accepted`,
    );
  }
  return algorithms;
}

// One key set per URL for the life of the process: jose caches the keys and refetches when an unknown key id appears.
const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function keySet(url: string): ReturnType<typeof createRemoteJWKSet> {
  let keys = keySets.get(url);
  if (!keys) {
    keys = createRemoteJWKSet(new URL(url));
    keySets.set(url, keys);
  }
  return keys;
}

export type ProxyAssertion = { ok: true; email: string; name: string | null; groups: string[] } | { ok: false; reason: string };

/** Who the proxy says is asking, if its assertion verifies. Reasons are for people; they never include the token. */
export async function verifyProxyAssertion(headers: Headers, settings: ProxySettings = proxySettings()): Promise<ProxyAssertion> {
  const raw = headers.get(settings.header)?.trim();
  const token = settings.header === "authorization" ? raw?.replace(/^Bearer\s+/i, "") : raw;
  if (!token) return { ok: false, reason: `No ${settings.header} header: is Latchkey behind the configured proxy?` };
  let claims: JWTPayload;
  try {
    ({ payload: claims } = await jwtVerify(token, keySet(settings.jwksUrl), {
      algorithms: settings.algorithms,
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ["exp"],
      clockTolerance: 30,
    }));
  } catch (error) {
    return { ok: false, reason: refusal(error, settings) };
  }
  const email = claims[settings.emailClaim];
  if (typeof email !== "string" || email.trim() === "") {
    return { ok: false, reason: `The proxy's assertion carries no e-mail address (claim "${settings.emailClaim}").` };
  }
  return {
    ok: true,
    email: email.trim().toLowerCase(),
    name: typeof claims.name === "string" && claims.name.trim() !== "" ? claims.name.trim() : null,
    groups: groupsFromClaims(claims, settings.groupsClaim),
  };
}

function refusal(error: unknown, s: ProxySettings): string {
  if (error instanceof errors.JWTExpired) return "The proxy's assertion has expired.";
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "iss") return `The proxy's assertion was not issued by ${s.issuer}.`;
    if (error.claim === "aud") return `The proxy's assertion is meant for another application, not ${s.audience}.`;
    if (error.claim === "exp") return "The proxy's assertion has no expiry time.";
    if (error.claim === "nbf") return "The proxy's assertion is not valid yet: check the clocks of the proxy and of Latchkey.";
    return `The proxy's assertion has an invalid "${error.claim}" claim.`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return `The proxy's assertion is not signed with an algorithm Latchkey accepts (${s.algorithms.join(", ")}).`;
  }
  if (error instanceof errors.JWKSNoMatchingKey) return `The proxy's assertion is signed with a key that is not published at ${s.jwksUrl}.`;
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return `The proxy's assertion has a signature that does not match the keys published at ${s.jwksUrl}.`;
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return `The ${s.header} header does not hold a signed token.`;
  logger("auth").error("could not verify the proxy's assertion", { jwksUrl: s.jwksUrl, error });
  return `Latchkey could not check the proxy's assertion: its keys at ${s.jwksUrl} could not be fetched. Try again in a moment.`;
}

export type ProxySignIn = { ok: true; principal: Principal } | { ok: false; reason: string };

/**
 * The person the proxy vouches for, as a Principal. Their user row follows the proxy's
 * groups: when they differ from the stored ones, the change goes through the directory
 * (applyDirectoryChange), which revokes what the policy no longer gives them, audited
 * "directory: removed from ... (at trusted-proxy sign-in)". A sign-in is recorded (and
 * audited) when they are new, their groups or roles changed, or the last one is over 8
 * hours old, so a page view is not an audit event. A deactivated person is refused.
 */
export async function principalFromProxy(headers: Headers, settings: ProxySettings = proxySettings()): Promise<ProxySignIn> {
  const asserted = await verifyProxyAssertion(headers, settings);
  if (!asserted.ok) return asserted;
  const { email, name, groups } = asserted;
  const roles = rolesForGroups(policy(), groups);
  const known = await db.user.findUnique({ where: { email }, select: USER_FIELDS });
  if (known?.kind === "service") return { ok: false, reason: `${email} is a service identity: it acts only through API tokens, never through the proxy.` };
  if (known && !known.active)
    return { ok: false, reason: `The proxy signed you in as ${email}, but your Latchkey account was deactivated. Ask the platform team if this is a mistake.` };
  // What the lost groups gave ends now, also when no role is left.
  const changed = Boolean(known && !sameSet(known.groups, groups));
  if (known && changed) await applyDirectoryChange({ userId: known.id, groups, source: "trusted-proxy" });
  if (roles.length === 0) {
    return {
      ok: false,
      reason: `The proxy signed you in as ${email}, but none of your groups gives you a role in Latchkey. Ask the platform team to add your group to the policy.`,
    };
  }
  if (known && !changed && !signInDue(known, groups, roles)) return { ok: true, principal: { id: known.id, email, groups, roles } };

  const id = await db.$transaction(async (tx) => {
    // Several requests of one page arrive together: one of them records the sign-in.
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`latchkey.proxy-sign-in:${email}`}))`;
    const current = await tx.user.findUnique({ where: { email }, select: USER_FIELDS });
    // Another request of the same page recorded this sign-in after this one read the row.
    if (current && known && current.lastSignInAt?.getTime() !== known.lastSignInAt?.getTime()) return current.id;
    if (current && !changed && !signInDue(current, groups, roles)) return current.id;
    const user = await tx.user.upsert({
      where: { email },
      create: { email, name: name ?? email, groups, roles, lastSignInAt: new Date() },
      update: { groups, roles, name: name ?? undefined, lastSignInAt: new Date() },
    });
    await recordEvent(tx, {
      actor: { type: "human", id: user.id, email },
      action: "auth.signed_in",
      data: { via: "trusted-proxy", proxy: settings.kind, groups, roles },
    });
    return user.id;
  });
  return { ok: true, principal: { id, email, groups, roles } };
}

const USER_FIELDS = { id: true, kind: true, active: true, groups: true, roles: true, lastSignInAt: true } as const;

function signInDue(user: { groups: string[]; roles: string[]; lastSignInAt: Date | null }, groups: string[], roles: Role[]): boolean {
  const stale = !user.lastSignInAt || Date.now() - user.lastSignInAt.getTime() >= SIGN_IN_RECORDED_FOR_MS;
  return stale || !sameSet(user.groups, groups) || !sameSet(user.roles, roles);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");
}
