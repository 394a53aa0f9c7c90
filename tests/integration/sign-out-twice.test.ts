import { createRequire } from "node:module";
import path from "node:path";
import type { AuthOptions } from "next-auth";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { signInThroughIdp } from "../helpers/oidc-sign-in";
import { startLocalIdp, type RunningIdp } from "../../scripts/support/local-idp";
import { freePort } from "../../scripts/support/ports";

/**
 * README "Sign out ends the Latchkey session": the second time round. After signing out, the
 * old session cookie (kept by a second tab, or replayed) is no session at all; signing out
 * again with it is harmless and records nothing; the returning person signs in through the
 * real provider again and gets a new session, and their other session is untouched until
 * they sign out of it too. Through next-auth's own handler, as the portal's route runs it.
 */
const PORTAL = "http://localhost:3999";
const COOKIE = "next-auth.session-token";
let fx: Awaited<ReturnType<typeof engineFixture>>;
let idp: RunningIdp;
let options: AuthOptions;

interface Answer {
  redirect?: string;
  body?: unknown;
  cookies?: { name: string; value: string; options?: { maxAge?: number; expires?: Date } }[];
}
const { AuthHandler } = createRequire(import.meta.url)(path.join(process.cwd(), "node_modules/next-auth/core/index.js")) as {
  AuthHandler: (params: { req: Record<string, unknown>; options: AuthOptions }) => Promise<Answer>;
};
const auth = (req: Record<string, unknown>) => AuthHandler({ req: { headers: { host: "localhost:3999", "x-forwarded-proto": "http" }, ...req }, options });

beforeAll(async () => {
  idp = await startLocalIdp({
    port: await freePort(),
    clientId: "latchkey-test",
    clientSecret: "test-secret",
    redirectUris: [`${PORTAL}/api/auth/callback/oidc`],
  });
  fx = await engineFixture({ OIDC_ISSUER: idp.issuer });
  options = (await import("@/lib/auth/options")).authOptions();
});
afterAll(async () => {
  await fx?.close();
  await idp?.close();
});

/** The session a browser holding this cookie has, as GET /api/auth/session answers it. */
async function sessionOf(token: string) {
  const answer = await auth({ action: "session", method: "GET", cookies: { [COOKIE]: token } });
  return answer.body as { user?: { email?: string } };
}

/** Signs out the browser holding this cookie, as the Sign out button does (POST with the CSRF token). */
async function signOut(token: string) {
  const csrf = await auth({ action: "csrf", method: "GET", cookies: {} });
  const cookies = Object.fromEntries((csrf.cookies ?? []).map((c) => [c.name, c.value]));
  return auth({
    action: "signout",
    method: "POST",
    cookies: { ...cookies, [COOKIE]: token },
    body: { csrfToken: (csrf.body as { csrfToken: string }).csrfToken, callbackUrl: `${PORTAL}/signin` },
  });
}

const signedOut = () => fx.db.auditEvent.count({ where: { action: "auth.signed_out", actorEmail: "alice@example.com" } });

describe("signing out, and then again", () => {
  it("leaves the old cookie no session, a second sign-out harmless, and the next sign-in a new session", { timeout: 60_000 }, async () => {
    const laptop = await signInThroughIdp(options, PORTAL, "alice@example.com");
    const phone = await signInThroughIdp(options, PORTAL, "alice@example.com");
    expect(laptop.sessionToken && phone.sessionToken).toBeTruthy();
    expect((await sessionOf(laptop.sessionToken!)).user?.email).toBe("alice@example.com");

    const first = await signOut(laptop.sessionToken!);
    expect(first.redirect).toBe(`${PORTAL}/signin`);
    // The browser is told to drop the cookie, and the session it named is gone from the database.
    expect(first.cookies?.find((c) => c.name === COOKIE)).toMatchObject({ value: "" });
    expect(await fx.db.session.count({ where: { sessionToken: laptop.sessionToken! } })).toBe(0);
    expect(await signedOut()).toBe(1);

    // A copy of the old cookie is no session: not for next-auth, not for the portal's pages and routes.
    expect(await sessionOf(laptop.sessionToken!)).toEqual({});
    const found = await options.adapter!.getSessionAndUser!(laptop.sessionToken!);
    expect(found).toBeNull();
    // Signing out again with it changes nothing, records nothing and logs no error (next-auth logs through console.error).
    const errors = vi.spyOn(console, "error");
    try {
      const second = await signOut(laptop.sessionToken!);
      expect(second.redirect).toBe(`${PORTAL}/signin`);
      expect(errors).not.toHaveBeenCalled();
    } finally {
      errors.mockRestore();
    }
    expect(await signedOut()).toBe(1);
    // The other session was not this one: it stays until it is signed out too.
    expect((await sessionOf(phone.sessionToken!)).user?.email).toBe("alice@example.com");

    // The returning person signs in again through the provider: a new session, not the old one revived.
    const again = await signInThroughIdp(options, PORTAL, "alice@example.com");
    expect(again.redirect).toBe(`${PORTAL}/`);
    expect(again.sessionToken).toBeTruthy();
    expect(again.sessionToken).not.toBe(laptop.sessionToken);
    expect((await sessionOf(again.sessionToken!)).user?.email).toBe("alice@example.com");
    expect(await sessionOf(laptop.sessionToken!)).toEqual({});
    expect(await fx.db.auditEvent.count({ where: { action: "auth.signed_in", actorEmail: "alice@example.com" } })).toBe(3);

    await signOut(phone.sessionToken!);
    expect(await sessionOf(phone.sessionToken!)).toEqual({});
    expect(await signedOut()).toBe(2);
    expect(await fx.db.session.count({ where: { user: { email: "alice@example.com" } } })).toBe(1);
  });
});
