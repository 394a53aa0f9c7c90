import { PrismaAdapter } from "@next-auth/prisma-adapter";
import type { NextAuthOptions } from "next-auth";
import type { Adapter } from "next-auth/adapters";
import { recordEvent, SYSTEM } from "../audit/record";
import { db } from "../db";
import { env } from "../env";
import { databaseRefusal } from "../errors";
import { logger } from "../log";
import { rolesForGroups } from "../policy/evaluate";
import { policy } from "../policy/current";
import type { Role } from "../policy/schema";
import { applyDirectoryChange } from "../identity/directory";
import { mergeClaims, needsUserinfo, readSignInAnswer, type ClaimSettings } from "../identity/sign-in-claims";
import { safeRedirect } from "./callback-url";
import { groupsFromClaims } from "./groups";

/**
 * next-auth configuration: one generic OpenID Connect provider (authorization code +
 * PKCE + state), database sessions (so an admin can end them), and roles recomputed from
 * the IdP's answer at every sign-in, for new and returning people alike.
 */
let cached: NextAuthOptions | undefined;

/** Where each sign-in's groups came from, for its audit event (keyed by the merged claims next-auth passes along). */
const groupsFrom = new WeakMap<object, "id_token" | "userinfo">();
/** The same, with the e-mail's verified flag, keyed by the profile made from those claims (what next-auth passes to events.signIn). */
const answers = new WeakMap<object, { groupsFrom: "id_token" | "userinfo"; emailVerified: boolean | string | null }>();

function claimSettings(): ClaimSettings {
  const e = env();
  return { groupsClaim: e.OIDC_GROUPS_CLAIM, groupsSource: e.OIDC_GROUPS_SOURCE, requireEmailVerified: e.OIDC_REQUIRE_EMAIL_VERIFIED };
}

/** A refused sign-in is audited with what was refused and why, then sent back to the sign-in page. */
async function refuse(error: string, email?: string): Promise<string> {
  await db.$transaction((tx) =>
    recordEvent(tx, { actor: email ? { type: "human", email } : SYSTEM, action: "auth.sign_in_refused", data: { email: email ?? null, reason: error } }),
  );
  return `/signin?error=${error}`;
}

/**
 * Database sessions are extended (written) as people use the portal. When the database refuses
 * the write (read-only, out of connections, timed out), next-auth would drop the session and
 * send the person to sign in: instead the session stays as it was, and is extended at a later
 * request once writes are taken again. Ending a session that is already gone ends nothing
 * and is no error (next-auth would log one with its stack).
 */
function keepSessionsWhenWritesFail(adapter: Adapter): Adapter {
  const updateSession = adapter.updateSession!;
  return {
    ...adapter,
    async updateSession(session) {
      try {
        return await updateSession(session);
      } catch (error) {
        const reason = databaseRefusal(error);
        if (!reason) throw error;
        logger("auth").warn("a session could not be extended: the database refused the write; it stays as it was", { reason });
        return null;
      }
    },
    // Signing out again (a second tab, a replayed cookie) names a session already ended: nothing to end, not an error.
    async deleteSession(sessionToken) {
      try {
        return await db.session.delete({ where: { sessionToken } });
      } catch (error) {
        if ((error as { code?: string }).code === "P2025") return null;
        throw error;
      }
    },
  };
}

export function authOptions(): NextAuthOptions {
  if (cached) return cached;
  const e = env();
  cached = {
    adapter: keepSessionsWhenWritesFail(PrismaAdapter(db)),
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
        // The answer sign-in decides on: the ID token, and userinfo where configured or needed.
        userinfo: {
          async request({ tokens, client }) {
            const settings = claimSettings();
            // At run time next-auth hands over openid-client's TokenSet, whose ID token it has verified.
            const idClaims = (tokens as unknown as { claims(): Record<string, unknown> }).claims();
            // openid-client checks that userinfo's `sub` is the ID token's.
            const info = needsUserinfo(idClaims, settings) ? ((await client.userinfo(tokens as never)) as Record<string, unknown>) : null;
            const merged = mergeClaims(idClaims, info, settings);
            groupsFrom.set(merged.claims, merged.groupsFrom);
            return merged.claims as never;
          },
        },
        profile(claims: Record<string, unknown>) {
          const groups = groupsFromClaims(claims, e.OIDC_GROUPS_CLAIM);
          const email = typeof claims.email === "string" ? claims.email.trim().toLowerCase() : "";
          const profile = {
            id: String(claims.sub),
            email,
            name: typeof claims.name === "string" ? claims.name : email,
            image: null,
            groups,
            roles: rolesForGroups(policy(), groups),
            lastSignInAt: new Date(),
          };
          answers.set(profile, {
            groupsFrom: groupsFrom.get(claims) ?? "id_token",
            emailVerified: typeof claims.email_verified === "boolean" || typeof claims.email_verified === "string" ? claims.email_verified : null,
          });
          return profile;
        },
      },
    ],
    callbacks: {
      redirect: safeRedirect,
      /**
       * Decides on what the provider answered now (`profile`), never on the stored user:
       * for a returning person next-auth passes the database row as `user`, so reading
       * groups from it would write the first sign-in's groups back forever.
       */
      async signIn({ user, profile, account }) {
        const answer = readSignInAnswer((profile ?? {}) as Record<string, unknown>, claimSettings());
        if (!answer.ok) return refuse(answer.error, answer.email);
        const roles = rolesForGroups(policy(), answer.groups);
        const known =
          (await db.user.findUnique({ where: { id: String(user.id ?? "") }, select: { id: true, kind: true, active: true } })) ??
          (await db.user.findUnique({ where: { email: answer.email }, select: { id: true, kind: true, active: true } }));
        // A service identity acts only through its tokens; no IdP account may take it over.
        if (known?.kind === "service") return refuse("AccessDenied", answer.email);
        if (known && !known.active) return refuse("Deactivated", answer.email);
        if (known) {
          // Roles follow the provider at every sign-in, and what the lost groups gave ends now, also when no role is left.
          await applyDirectoryChange({ userId: known.id, groups: answer.groups, source: "sign-in" });
          await db.user.update({ where: { id: known.id }, data: { name: answer.name, lastSignInAt: new Date() } });
        }
        if (roles.length === 0) return refuse("NoRole", answer.email);
        // A new person is created from this object.
        Object.assign(user, { email: answer.email, name: answer.name, groups: answer.groups, roles, lastSignInAt: new Date() });
        // The adapter stores tokens only when it first links an account; sign-out needs the latest ID token as its hint (lib/auth/end-session.ts).
        if (account?.id_token)
          await db.account.updateMany({
            where: { provider: account.provider, providerAccountId: account.providerAccountId },
            data: { id_token: account.id_token },
          });
        return true;
      },
      async session({ session, user }) {
        // The database adapter's user is typed without Latchkey's columns (groups, roles); the row has them.
        const u = user as unknown as { id: string; email: string; name: string | null; groups: string[]; roles: Role[] };
        session.user = { id: u.id, email: u.email, name: u.name ?? u.email, groups: u.groups, roles: u.roles };
        return session;
      },
    },
    events: {
      async signIn({ user, profile }) {
        // What the provider said at this sign-in (the profile made from its answer), not what was stored before it.
        const said = profile as unknown as { groups?: string[]; roles?: string[] } | undefined;
        const u = user as { id: string; email: string };
        await db.$transaction((tx) =>
          recordEvent(tx, {
            actor: { type: "human", id: u.id, email: u.email },
            action: "auth.signed_in",
            data: { groups: said?.groups ?? [], roles: said?.roles ?? [], ...(said ? answers.get(said) : {}) },
          }),
        );
      },
      async signOut({ session }) {
        // With database sessions next-auth passes the session row (userId), typed as the JWT strategy's token.
        const s = session as unknown as { userId?: string } | null;
        if (!s?.userId) return;
        const u = await db.user.findUnique({ where: { id: s.userId } });
        await db.$transaction((tx) => recordEvent(tx, { actor: { type: "human", id: s.userId, email: u?.email ?? undefined }, action: "auth.signed_out" }));
      },
    },
  };
  return cached;
}
