import { PrismaAdapter } from "@next-auth/prisma-adapter";
import type { NextAuthOptions } from "next-auth";
import { recordEvent } from "../audit/record";
import { db } from "../db";
import { env } from "../env";
import { rolesForGroups } from "../policy/evaluate";
import { policy } from "../policy/current";
import type { Role } from "../policy/schema";
import { safeRedirect } from "./callback-url";
import { groupsFromClaims } from "./groups";

/**
 * next-auth configuration: one generic OpenID Connect provider (authorization code +
 * PKCE + state), database sessions (so an admin can end them), and roles recomputed from
 * the IdP's groups at every sign-in.
 */
let cached: NextAuthOptions | undefined;

export function authOptions(): NextAuthOptions {
  if (cached) return cached;
  const e = env();
  cached = {
    adapter: PrismaAdapter(db),
    secret: e.NEXTAUTH_SECRET,
    session: { strategy: "database", maxAge: 8 * 60 * 60, updateAge: 15 * 60 },
    pages: { signIn: "/signin", error: "/signin" },
    providers: [
      {
        id: "oidc",
        name: e.OIDC_PROVIDER_NAME,
        type: "oauth",
        wellKnown: `${e.OIDC_ISSUER!.replace(/\/$/, "")}/.well-known/openid-configuration`,
        clientId: e.OIDC_CLIENT_ID!,
        clientSecret: e.OIDC_CLIENT_SECRET!,
        authorization: { params: { scope: e.OIDC_SCOPES } },
        idToken: true,
        checks: ["pkce", "state", "nonce"],
        // One trusted corporate IdP: its verified e-mail identifies the person, so a user
        // created ahead of their first sign-in is linked rather than refused.
        allowDangerousEmailAccountLinking: true,
        profile(claims: Record<string, unknown>) {
          const groups = groupsFromClaims(claims, e.OIDC_GROUPS_CLAIM);
          const email = String(claims.email ?? "").toLowerCase();
          return {
            id: String(claims.sub),
            email,
            name: typeof claims.name === "string" ? claims.name : email,
            image: null,
            groups,
            roles: rolesForGroups(policy(), groups),
            lastSignInAt: new Date(),
          };
        },
      },
    ],
    callbacks: {
      redirect: safeRedirect,
      async signIn({ user }) {
        const u = user as { email?: string | null; groups?: string[]; roles?: Role[]; name?: string | null };
        if (!u.email) return "/signin?error=NoEmail";
        if (!u.roles || u.roles.length === 0) return "/signin?error=NoRole";
        // A service identity acts only through its tokens; no IdP account may take it over.
        if ((await db.user.findUnique({ where: { email: u.email }, select: { kind: true } }))?.kind === "service") return "/signin?error=AccessDenied";
        // Roles follow the IdP at every sign-in; a new user gets them from profile() above.
        await db.user.updateMany({
          where: { email: u.email },
          data: { groups: u.groups ?? [], roles: u.roles, name: u.name ?? undefined, lastSignInAt: new Date() },
        });
        return true;
      },
      async session({ session, user }) {
        const u = user as unknown as { id: string; email: string; name: string | null; groups: string[]; roles: Role[] };
        session.user = { id: u.id, email: u.email, name: u.name ?? u.email, groups: u.groups, roles: u.roles };
        return session;
      },
    },
    events: {
      async signIn({ user }) {
        const u = user as { id: string; email: string; groups?: string[]; roles?: string[] };
        await db.$transaction((tx) =>
          recordEvent(tx, { actor: { type: "human", id: u.id, email: u.email }, action: "auth.signed_in", data: { groups: u.groups ?? [], roles: u.roles ?? [] } }),
        );
      },
      async signOut({ session }) {
        const s = session as unknown as { userId?: string } | null;
        if (!s?.userId) return;
        const u = await db.user.findUnique({ where: { id: s.userId } });
        await db.$transaction((tx) => recordEvent(tx, { actor: { type: "human", id: s.userId, email: u?.email ?? undefined }, action: "auth.signed_out" }));
      },
    },
  };
  return cached;
}
