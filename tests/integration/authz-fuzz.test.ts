import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

/**
 * Hostile headers and cookies against forward-auth and introspection, on both listeners
 * that answer them: the portal's routes and the lean listener (LATCHKEY_AUTHZ_PORT). Anyone
 * behind a proxy can send a session cookie or a path, so whatever comes in, the answer is
 * a refusal or a decision, never a 500.
 */

const PROXY_SECRET = "proxy-secret-for-the-fuzz-0123456789";
let fx: Awaited<ReturnType<typeof engineFixture>>;
let portal: Awaited<ReturnType<typeof startApiServer>>;
let lean: { url: string; close: () => Promise<void> };
let introspector: string;
let sessionToken: string;

beforeAll(async () => {
  fx = await engineFixture({
    LATCHKEY_FORWARD_AUTH_PROXIES: `edge-nginx=${PROXY_SECRET}`,
    LATCHKEY_RATE_LIMIT_TOKEN: "100000",
    LATCHKEY_RATE_LIMIT_ADDRESS: "100000",
  });
  const alice = await fx.user("alice@example.com", ["engineering"]);
  sessionToken = "a-real-session-token-0123456789";
  await fx.db.session.create({ data: { sessionToken, userId: alice.id, expires: new Date(Date.now() + 3_600_000) } });
  const { createServiceIdentity } = await import("@/lib/identity/service-identities");
  const { createServiceToken } = await import("@/lib/identity/tokens");
  const dave = await fx.user("dave@example.com", ["platform-admins"]);
  const service = await createServiceIdentity(dave, {
    name: "resource-server",
    description: "Resource server that introspects credentials",
    groups: ["engineering"],
    requestOnly: true,
  });
  introspector = (await createServiceToken(dave, service.service!.id, { name: "introspect", scopes: ["introspect"], expiresInDays: 1 })).secret;
  portal = await startApiServer();
  const { startAuthzListener } = await import("@/lib/authz/listener");
  lean = await startAuthzListener(0, "127.0.0.1");
});
afterAll(async () => {
  await lean?.close();
  await portal?.close();
  await fx?.close();
});

const listeners = () =>
  [
    ["portal", portal.url],
    ["lean listener", lean.url],
  ] as const;

/** Cookie values as they travel: percent-encoded NUL, invalid UTF-8, encoded lone surrogates, prototype names, and plain noise. */
const cookieValue = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "%00",
      "abc%00",
      "%ED%A0%80",
      "%ff%fe",
      "%c0%80",
      "%",
      "%zz",
      "__proto__",
      "constructor",
      "toString",
      "a-real-session-token-0123456789",
      "x".repeat(600),
      '"quoted"',
    ),
  },
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.string({ maxLength: 40, unit: "binary-ascii" }).map((s) => s.replace(/[;\r\n]/g, "")),
);
const cookieName = fc.constantFrom("next-auth.session-token", "next-auth.session-token", "__Secure-next-auth.session-token", "other");
const headerText = fc.oneof(
  fc.constantFrom("payments.internal", "/", "/%00", "/%2e%2e/admin", "/\\admin", "constructor", "__proto__", "ÿ", "a".repeat(2000)),
  fc.string({ maxLength: 30, unit: "binary-ascii" }).map((s) => s.replace(/[\r\n\0]/g, "")),
);
const bearer = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  fc.constantFrom("%00", "lkp_" + "a".repeat(43), "eyJhbGciOiJub25lIn0.e30.", "constructor"),
  fc.string({ maxLength: 60, unit: "binary-ascii" }).map((s) => s.replace(/[\r\n\0]/g, "")),
);

describe("forward-auth and introspection under hostile headers and cookies", () => {
  it("never answer 500 on either listener, whatever the cookie, host, path or credential", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0, 1),
        fc.array(fc.tuple(cookieName, cookieValue), { maxLength: 3 }),
        headerText,
        headerText,
        bearer,
        fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, fc.constant(false)),
        async (which, cookies, host, uri, credential, withSecret) => {
          const [name, url] = listeners()[which]!;
          const headers: Record<string, string> = { "x-forwarded-host": host, "x-forwarded-uri": uri, cookie: cookies.map(([n, v]) => `${n}=${v}`).join("; ") };
          if (withSecret) headers["x-latchkey-proxy-secret"] = PROXY_SECRET;
          if (credential !== undefined) headers.authorization = `Bearer ${credential}`;
          let response: Response;
          try {
            response = await fetch(`${url}/api/forward-auth`, { headers });
          } catch {
            return; // the client refused to send it: nothing reached the server
          }
          const text = await response.text();
          expect(response.status, `${name}: ${JSON.stringify(headers)} → ${text.slice(0, 200)}`).toBeLessThan(500);
          expect(text).not.toMatch(/\n\s+at |node_modules|PrismaClient|prisma\./);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("refuse a session cookie PostgreSQL cannot compare as malformed, on both listeners", async () => {
    for (const [name, url] of listeners()) {
      for (const value of ["%00", "abc%00def"]) {
        const response = await fetch(`${url}/api/forward-auth`, {
          headers: {
            "x-latchkey-proxy-secret": PROXY_SECRET,
            "x-forwarded-host": "payments.internal",
            "x-forwarded-uri": "/",
            cookie: `next-auth.session-token=${value}`,
          },
        });
        expect(response.status, `${name} ${value}`).toBe(401);
        expect(await response.text()).toBe("The portal session cookie is malformed. Sign in again.\n");
      }
      // The same listener still recognises a real session (and refuses it here only for want of a grant).
      const real = await fetch(`${url}/api/forward-auth`, {
        headers: {
          "x-latchkey-proxy-secret": PROXY_SECRET,
          "x-forwarded-host": "payments.internal",
          "x-forwarded-uri": "/",
          cookie: `next-auth.session-token=${sessionToken}`,
        },
      });
      expect(real.status, name).toBe(403);
      expect(await real.text()).toMatch(/^alice@example\.com has no active grant covering payments\.internal\//);
    }
  });

  it("introspection answers inactive or refuses, never 500, whatever the token parameter", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0, 1),
        fc.oneof(
          fc.constantFrom("token=%00", "token=%ED%A0%80", "token=constructor", "token=a&token=b", "token=", "%", "token=%zz", "__proto__=1"),
          fc.string({ maxLength: 80 }),
        ),
        fc.boolean(),
        async (which, body, authorised) => {
          const [name, url] = listeners()[which]!;
          const response = await fetch(`${url}/api/oauth/introspect`, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded", ...(authorised ? { authorization: `Bearer ${introspector}` } : {}) },
            body,
          });
          const text = await response.text();
          expect(response.status, `${name}: ${body} → ${text.slice(0, 200)}`).toBeLessThan(500);
          if (authorised && response.status === 200) expect(JSON.parse(text)).toEqual({ active: false });
        },
      ),
      { numRuns: 60 },
    );
  });
});
