import { randomUUID } from "node:crypto";
import http from "node:http";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { PrismaClient } from "@prisma/client";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../helpers/database";
import { setTestEnvironment } from "../helpers/environment";
import { portalSecrets, startPortal, type PortalProcess } from "../helpers/portal-process";
import { freePort } from "../../scripts/support/ports";
import { BAD_CALLBACK_URL } from "../../lib/auth/callback-url";

/**
 * Hostile input against a production build, every kind of entry: pages with their path and
 * query parameters, server actions, the auditor's downloads, sign-in parameters, and
 * forward-auth cookies on the portal and on the lean listener (LATCHKEY_AUTHZ_PORT), each
 * run as `npm start` runs it. Whatever comes in, the answer is never a 500 or a stack
 * trace; the classes that once were (prototype-member ids, NUL and broken Unicode, days
 * PostgreSQL cannot hold, foreign or oversized or malformed action posts, a callbackUrl
 * that is not a URL) are each answered with their own status and message. Downloads held
 * open take at most four exports' places, and give them back when dropped.
 */

const PROXY_SECRET = "proxy-secret-for-the-portal-0123456789";
const PROXY_HOST = "latchkey.example.com";
let portal: PortalProcess;
let lean: string;
let dir: string;
let drop: () => Promise<void>;
let db: PrismaClient;
const sessions: Record<"alice" | "carol" | "dave", string> = { alice: "", carol: "", dave: "" };
let aliceToken: string;
let requestId: string;
let actions: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-hostile-"));
  const database = await createTestDatabase("latchkey_hostile");
  drop = database.drop;
  const configuration = {
    ...portalSecrets(),
    LATCHKEY_FORWARD_AUTH_PROXIES: `edge=${PROXY_SECRET}`,
    LATCHKEY_RATE_LIMIT_ADDRESS: "100000",
    LATCHKEY_RATE_LIMIT_TOKEN: "100000",
    LATCHKEY_RATE_LIMIT_SIGNIN: "100000",
  };
  setTestEnvironment(database.url, configuration);
  ({ db } = await import("@/lib/db"));
  // The signing key is made here, with time to spare: on a loaded machine RSA key generation
  // can outlast the portal's start-up transaction, and that is not what this file tests.
  const { activeSigningKey } = await import("@/lib/credentials/keys");
  await db.$transaction((tx) => activeSigningKey(tx), { timeout: 120_000 });
  const logFile = path.join(process.cwd(), "tests/.artifacts/hostile-input.log");
  await writeFile(logFile, "");
  const leanPort = await freePort();
  portal = await startPortal({
    databaseUrl: database.url,
    port: await freePort(),
    idpPort: await freePort(),
    dataDir: dir,
    env: { ...configuration, LATCHKEY_AUTHZ_PORT: String(leanPort) },
    logFile,
  });
  lean = `http://localhost:${leanPort}`;

  const { rolesForGroups } = await import("@/lib/policy/evaluate");
  const { policy } = await import("@/lib/policy/current");
  const { createPersonalToken } = await import("@/lib/identity/tokens");
  const { createRequest } = await import("@/lib/approvals/engine");
  const person = async (email: string, groups: string[]) => {
    const roles = rolesForGroups(policy(), groups);
    const user = await db.user.create({ data: { email, name: email, groups, roles } });
    const sessionToken = randomUUID();
    await db.session.create({ data: { sessionToken, userId: user.id, expires: new Date(Date.now() + 3_600_000) } });
    return { principal: { id: user.id, email, groups, roles }, sessionToken };
  };
  const alice = await person("alice@example.com", ["engineering"]);
  sessions.alice = alice.sessionToken;
  sessions.carol = (await person("carol@example.com", ["audit"])).sessionToken;
  sessions.dave = (await person("dave@example.com", ["platform-admins"])).sessionToken;
  aliceToken = (await createPersonalToken(alice.principal, { name: "hostile", scopes: ["requests:read", "requests:write"], expiresInDays: 1 })).secret;
  requestId = (
    await createRequest(alice.principal, "temporary-access", {
      targetId: "payments-api-production",
      role: "read",
      durationMinutes: 60,
      justification: "Investigating INC-1234 in production",
    })
  ).id;
  const manifest = JSON.parse(await readFile(".next/standalone/.next/server/server-reference-manifest.json", "utf8")) as {
    node: Record<string, { exportedName: string }>;
  };
  actions = Object.fromEntries(Object.entries(manifest.node).map(([id, a]) => [a.exportedName, id]));
});

afterAll(async () => {
  await portal?.stop();
  const { disconnectDb } = await import("@/lib/db");
  await disconnectDb();
  await drop?.();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const cookie = (token: string) => `next-auth.session-token=${token}`;
const STACK = /\n\s+at |node_modules|PrismaClient|prisma\.|Invalid Server Actions request/;

async function get(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers, redirect: "manual" });
  return { status: response.status, text: await response.text() };
}

async function auditEvents(): Promise<number> {
  return db.auditEvent.count();
}

/** Path segments and query values as raw URL text: NUL, invalid UTF-8, encoded lone surrogates, prototype names. */
const rawText = fc.oneof(
  fc.constantFrom(
    "%00",
    "a%00b",
    "%ff",
    "%c0%80",
    "%ED%A0%80",
    "%E2%82",
    "%",
    "%zz",
    "__proto__",
    "constructor",
    "toString",
    "0000-01-01",
    "9999-12-31",
    "..%2f..%2f",
    "x".repeat(300),
  ),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
);
const PAGES = [
  "/requests/SEG",
  "/history/people/SEG",
  "/catalog/SEG",
  "/history",
  "/history/review",
  "/approvals",
  "/requests",
  "/catalog",
  "/settings/tokens",
  "/admin/users",
  "/signin",
];
const QUERY_KEYS = [
  "q",
  "actor",
  "approver",
  "workflow",
  "target",
  "status",
  "action",
  "from",
  "to",
  "sort",
  "after",
  "before",
  "end",
  "callbackUrl",
  "error",
  "__proto__",
];

describe("pages under hostile path and query parameters", () => {
  it("never answer 500 or show a stack trace, whoever asks and whatever the session cookie", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...PAGES),
        rawText,
        fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS), rawText), { maxLength: 3 }),
        fc.oneof(fc.constantFrom("alice", "carol", "dave", "none"), rawText),
        async (template, segment, query, who) => {
          const url = `${portal.url}${template.replace("SEG", segment)}?${query.map(([k, v]) => `${k}=${v}`).join("&")}`;
          const token = who === "none" ? undefined : who in sessions ? sessions[who as keyof typeof sessions] : who;
          const { status, text } = await get(url, token ? { cookie: cookie(token) } : {});
          expect(status, `${url} as ${who}`).toBeLessThan(500);
          expect(text).not.toMatch(STACK);
        },
      ),
      { numRuns: 120 },
    );
  });

  it("read a repeated query parameter as its first value, never as a 500", async () => {
    // Found by the property above (seed 454150254): a repeated callbackUrl reached the sign-in page as an array.
    for (const [page, query, who] of [
      ["/signin", "callbackUrl=%00&callbackUrl=%00", "none"],
      ["/signin", "callbackUrl=/requests&callbackUrl=//evil.example", "none"],
      ["/signin", "error=NoRole&error=NoEmail&callbackUrl=/a&callbackUrl=/b", "none"],
      ["/catalog/temporary-access", "target=payments-api-staging&target=payments-api-production", "alice"],
      ["/history/review", "from=2026-01-01&from=0000-01-01&to=2026-01-31&to=x", "carol"],
      ["/history", "actor=alice@example.com&actor=%00&sort=newest&sort=x", "carol"],
    ] as const) {
      const { status, text } = await get(`${portal.url}${page}?${query}`, who === "none" ? {} : { cookie: cookie(sessions[who]) });
      expect(status, `${page}?${query}`).toBe(200);
      expect(text).not.toMatch(STACK);
    }
    // The first value counts: its error's message is shown, and the review covers its period.
    expect((await get(`${portal.url}/signin?error=NoRole&error=NoEmail`)).text).toContain("none of your groups gives you a role in Latchkey");
    const review = await get(`${portal.url}/history/review?from=2026-01-01&from=0000-01-01&to=2026-01-31&to=x`, { cookie: cookie(sessions.carol) });
    expect(review.text).toContain("/api/history/review?from=2026-01-01&amp;to=2026-01-31&amp;format=csv");
  });

  it("a request or person named with NUL is simply not found, and the auditor's filters name their mistake", async () => {
    expect((await get(`${portal.url}/requests/a%00b`, { cookie: cookie(sessions.alice) })).status).toBe(404);
    // The page's live poll refuses the same id with 400, as the token API does, instead of reaching PostgreSQL.
    const live = await get(`${portal.url}/api/live/requests/a%00b`, { cookie: cookie(sessions.alice) });
    expect(live.status).toBe(400);
    const person = await get(`${portal.url}/history/people/a%00b`, { cookie: cookie(sessions.carol) });
    expect(person.status).toBe(200);
    expect(person.text).toContain("Latchkey has no record of");
    const history = await get(`${portal.url}/history?from=0000-01-01&q=pay%00`, { cookie: cookie(sessions.carol) });
    expect(history.status).toBe(200);
    expect(history.text).toContain("from: Use a date between 1970-01-01 and 9999-12-30.");
    const review = await get(`${portal.url}/history/review?from=9999-12-01&to=9999-12-31`, { cookie: cookie(sessions.carol) });
    expect(review.status).toBe(200);
    expect(review.text).toContain("Use a date between 1970-01-01 and 9999-12-30.");
  });
});

describe("the auditor's downloads", () => {
  it("validate every filter before the audit event and the first byte: a refused export is a 400 and leaves no trace", async () => {
    const before = await auditEvents();
    for (const [route, query, message] of [
      ["export", "q=payments%00", "q: Text may not contain NUL characters or broken Unicode (unpaired surrogates)."],
      ["export", "actor=%00", "actor: Text may not contain NUL characters or broken Unicode (unpaired surrogates)."],
      ["export", "from=0000-01-01", "from: Use a date between 1970-01-01 and 9999-12-30."],
      ["export", "to=9999-12-31", "to: Use a date between 1970-01-01 and 9999-12-30."],
      ["review", "from=0000-01-01&to=0000-02-01", "from: Use a date between 1970-01-01 and 9999-12-30."],
      ["review", "from=9999-12-01&to=9999-12-31", "to: Use a date between 1970-01-01 and 9999-12-30."],
    ] as const) {
      const { status, text } = await get(`${portal.url}/api/history/${route}?${query}`, { cookie: cookie(sessions.carol) });
      expect(status, `${route}?${query}`).toBe(400);
      expect(text).toContain(message);
    }
    expect(await auditEvents()).toBe(before);
    // A valid export still streams to its end, and is audited once.
    const ok = await get(`${portal.url}/api/history/export?format=jsonl&from=2020-01-01&actor=alice@example.com`, { cookie: cookie(sessions.carol) });
    expect(ok.status).toBe(200);
    const lines = ok.text
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type?: string; action?: string });
    expect(lines.filter((l) => l.type === "event").map((l) => l.action)).toContain("request.created");
    expect(await auditEvents()).toBe(before + 1);
  });

  it("never answer 500 or break mid-stream, whatever the filters", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("export", "review"),
        fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS, "format"), rawText), { maxLength: 4 }),
        async (route, query) => {
          const url = `${portal.url}/api/history/${route}?${query.map(([k, v]) => `${k}=${v}`).join("&")}`;
          // A body that breaks off mid-stream makes fetch's text() reject: that fails the property too.
          const { status, text } = await get(url, { cookie: cookie(sessions.carol) });
          expect(status, url).toBeLessThan(500);
          expect(text).not.toMatch(STACK);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("server actions", () => {
  const post = (headers: Record<string, string>, body: string, page = "/settings/tokens", action = "createPersonalTokenAction") =>
    fetch(`${portal.url}${page}`, {
      method: "POST",
      headers: {
        "next-action": actions[action]!,
        "content-type": "text/plain;charset=UTF-8",
        accept: "text/x-component",
        origin: portal.url,
        cookie: cookie(sessions.dave),
        ...headers,
      },
      body,
      redirect: "manual",
    });
  const valid = JSON.stringify([{ name: "", scopes: [], expiresInDays: 1 }]);

  it("are refused with 403 from another origin, also when X-Forwarded-Host claims that origin without a configured proxy's secret", async () => {
    const before = await auditEvents();
    for (const headers of [
      { origin: "https://evil.example.com" } as Record<string, string>,
      { origin: "null" },
      { origin: "not a url" },
      { origin: "https://evil.example.com", "x-forwarded-host": "evil.example.com" },
      { origin: `https://${PROXY_HOST}`, "x-forwarded-host": PROXY_HOST, "x-latchkey-proxy-secret": "not-the-secret" },
    ]) {
      const response = await post(headers, valid);
      expect(response.status, JSON.stringify(headers)).toBe(403);
      expect(await response.text()).toMatch(/^Posts from .+ are refused: only the portal's own pages may call its actions\.\n$/);
    }
    const bare = await fetch(`${portal.url}/settings/tokens`, {
      method: "POST",
      headers: { "next-action": actions.createPersonalTokenAction!, "content-type": "text/plain;charset=UTF-8", cookie: cookie(sessions.dave) },
      body: valid,
    });
    expect(bare.status).toBe(403);
    expect(await auditEvents()).toBe(before);
  });

  it("honour X-Forwarded-Host from a configured proxy, and run as usual from the portal's own origin", async () => {
    for (const headers of [
      {} as Record<string, string>,
      { origin: `https://${PROXY_HOST}`, "x-forwarded-host": PROXY_HOST, "x-latchkey-proxy-secret": PROXY_SECRET },
    ]) {
      const response = await post(headers, valid);
      expect(response.status, JSON.stringify(headers)).toBe(200);
      // The action ran: its own validation answered (an empty name is refused).
      expect(await response.text()).toMatch(/"ok":false,"code":"invalid"/);
    }
  });

  it("are refused with 413 over the size limit, 400 when malformed or deeply nested, 415 when not JSON arguments", async () => {
    const cases: Array<[number, string, Record<string, string>, RegExp]> = [
      [413, JSON.stringify([{ name: "x".repeat(300_000), scopes: [], expiresInDays: 1 }]), {}, /larger than 256 KiB/],
      [400, "{not json", {}, /not valid JSON/],
      [400, `${"[".repeat(5000)}${"]".repeat(5000)}`, {}, /nest deeper than 32 levels/],
      [400, JSON.stringify([JSON.parse(`${'{"a":'.repeat(100)}1${"}".repeat(100)}`)]), {}, /nest deeper than 32 levels/],
      [400, JSON.stringify({ name: "x" }), {}, /must be a JSON array/],
      [400, JSON.stringify(["$@1"]), {}, /plain values only/],
      [415, "--x\r\ngarbage", { "content-type": "multipart/form-data; boundary=x" }, /text\/plain JSON/],
    ];
    for (const [status, body, headers, message] of cases) {
      const response = await post(headers, body);
      expect(response.status, body.slice(0, 40)).toBe(status);
      expect(await response.text()).toMatch(message);
    }
    // The second time, a well-formed call from the same session still runs.
    expect(await (await post({}, valid)).text()).toMatch(/"ok":false,"code":"invalid"/);
  });

  it("never answer 500 to random arguments, ids or bodies", async () => {
    const names = ["decideAction", "cancelAction", "revealCredentialAction", "revokeTokenAction", "createRequestAction", "endSessionsAction"];
    const hostile = fc.oneof(
      fc.constantFrom("\u0000", "a\u0000b", "\ud800", "__proto__", "constructor", "toString", "$@1", "$Q2", "$undefined"),
      fc.string({ maxLength: 30 }),
    );
    const argument = fc.oneof(
      fc.record(
        {
          requestId: fc.oneof(fc.constant("REQ"), hostile),
          tokenId: hostile,
          userId: hostile,
          decision: fc.constantFrom("approve", "reject", "constructor"),
          comment: hostile,
          workflowId: fc.oneof(fc.constant("temporary-access"), hostile),
          input: fc.record(
            { targetId: hostile, role: hostile, durationMinutes: fc.oneof(fc.integer(), fc.double()), justification: hostile },
            { requiredKeys: [] },
          ),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue({ maxDepth: 4 }),
    );
    const body = fc.oneof(
      fc.array(argument, { maxLength: 2 }).map((args) => JSON.stringify(args).replaceAll('"REQ"', JSON.stringify(requestId))),
      fc.string({ maxLength: 60 }),
      fc.constantFrom("", "[", "null", "[null]", "[[]]"),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...names), body, fc.constantFrom("alice", "dave"), async (name, payload, who) => {
        const before = (await db.accessRequest.findUniqueOrThrow({ where: { id: requestId } })).status;
        const response = await post(
          { cookie: cookie(sessions[who as "alice" | "dave"]) },
          payload,
          name === "endSessionsAction" ? "/admin/users" : `/requests/${requestId}`,
          name,
        );
        const text = await response.text();
        expect(response.status, `${name} ${payload.slice(0, 80)} → ${text.slice(0, 200)}`).toBeLessThan(500);
        expect(text).not.toMatch(STACK);
        // A random call may change Alice's request only as a well-formed one would: Alice withdrawing her own request, or
        // Dave deciding it, answered as done. Extra keys in a valid argument are ignored, so such a call can be generated.
        const after = (await db.accessRequest.findUniqueOrThrow({ where: { id: requestId } })).status;
        if (after !== before) {
          expect(`${name} by ${who}`, payload).toMatch(/^(cancelAction by alice|decideAction by dave)$/);
          expect(text).toContain('"ok":true');
        }
      }),
      { numRuns: 80 },
    );
  });
});

describe("sign-in parameters", () => {
  async function csrf() {
    const response = await fetch(`${portal.url}/api/auth/csrf`);
    const { csrfToken } = (await response.json()) as { csrfToken: string };
    return {
      csrfToken,
      cookie: response.headers
        .getSetCookie()
        .map((c) => c.split(";")[0])
        .join("; "),
    };
  }

  /** Starts a sign-in as next-auth/react's signIn() does: a form with the CSRF token, asking for the answer as JSON. */
  const signInForm = (fields: Record<string, string>, cookie: string) =>
    fetch(`${portal.url}/api/auth/signin/oidc`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: new URLSearchParams({ ...fields, json: "true" }),
      redirect: "manual",
    });

  it("refuse a callbackUrl that is not a path or an http(s) URL with 400 and a message, and accept one that is", async () => {
    const { csrfToken, cookie: csrfCookie } = await csrf();
    // "/%" and the other broken escapes: found by the property below (seed 615526567), once a 500.
    for (const callbackUrl of [
      "http://[::",
      ":::",
      "a\u0000b",
      "http://exa mple.com",
      "javascript:alert(1)",
      "/%",
      "/a%zz",
      "/%E2%82",
      "https://portal.example/%ff",
    ]) {
      const form = await signInForm({ csrfToken, callbackUrl }, csrfCookie);
      expect(form.status, callbackUrl).toBe(400);
      expect(await form.text()).toBe(`${BAD_CALLBACK_URL}\n`);
      const query = await get(`${portal.url}/api/auth/signin?callbackUrl=${encodeURIComponent(callbackUrl)}`);
      expect(query.status, callbackUrl).toBe(400);
    }
    for (const callbackUrl of ["/requests", `${portal.url}/history`]) {
      const response = await signInForm({ csrfToken, callbackUrl }, csrfCookie);
      expect(response.status, callbackUrl).toBe(200);
      expect(((await response.json()) as { url: string }).url).toMatch(/\/auth\?/);
    }
  });

  it("never answer 500 to next-auth's cookies written by hand with broken escapes, on every sign-in route", async () => {
    const { csrfToken, cookie: csrfCookie } = await csrf();
    // Encoded once, so the cookie reaches next-auth as a broken escape (Next.js drops a cookie it cannot decode); with a
    // second callback-url cookie that the route deletes, which is what made Next.js read back what next-auth wrote.
    for (const name of ["next-auth.callback-url", "next-auth.session-token", "next-auth.state", "next-auth.pkce.code_verifier"])
      for (const value of ["%2F%25", "%25", "%25E0%25A4%25A", "%2Frequests%25zz"]) {
        const cookies = `${csrfCookie}; ${name}=${value}; __Secure-next-auth.callback-url=%20`;
        const responses = [
          await signInForm({ csrfToken, callbackUrl: "/requests" }, cookies),
          await fetch(`${portal.url}/api/auth/signin`, { headers: { cookie: cookies }, redirect: "manual" }),
          await fetch(`${portal.url}/api/auth/session`, { headers: { cookie: cookies }, redirect: "manual" }),
          await fetch(`${portal.url}/api/auth/callback/oidc?code=x&state=y`, { headers: { cookie: cookies }, redirect: "manual" }),
        ];
        for (const response of responses) {
          const text = await response.text();
          expect(response.status, `${response.url} ${name}=${value} → ${text.slice(0, 200)}`).toBeLessThan(500);
          expect(text).not.toMatch(STACK);
        }
      }
  });

  it("refuse a sign-in body next-auth cannot read, and every query value of callbackUrl, with 400 and a message", async () => {
    const { csrfToken, cookie: csrfCookie } = await csrf();
    const post = (route: string, type: string, body: string) =>
      fetch(`${portal.url}/api/auth/${route}`, { method: "POST", headers: { "content-type": type, cookie: csrfCookie }, body, redirect: "manual" });
    const unreadable = "A sign-in body must be form fields or a JSON object of text fields.\n";
    for (const route of ["signin/oidc", "signout", "session", "callback/oidc"])
      for (const body of ["{", "", "null", "[]", '"x"', `{"csrfToken":"${csrfToken}","callbackUrl":1}`, `{"csrfToken":{}}`]) {
        const response = await post(route, "application/json", body);
        expect(response.status, `${route} ${body}`).toBe(400);
        expect(await response.text()).toBe(unreadable);
      }
    // next-auth reads a body as JSON or as a form when its content type mentions either, wherever in the header.
    for (const type of ["text/plain, application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8"]) {
      const response = await post("signin/oidc", type, new URLSearchParams({ csrfToken, callbackUrl: "/%", json: "true" }).toString());
      expect(response.status, type).toBe(400);
      expect(await response.text()).toBe(`${BAD_CALLBACK_URL}\n`);
    }
    const json = await post("signin/oidc", "text/plain; application/json", JSON.stringify({ csrfToken, callbackUrl: "/%", json: "true" }));
    expect(json.status).toBe(400);
    expect(await json.text()).toBe(`${BAD_CALLBACK_URL}\n`);
    // Past the routes' limit, read no further, whichever way it is sent.
    const big = "x".repeat(70 * 1024);
    for (const [type, body] of [
      ["application/json", JSON.stringify({ csrfToken, callbackUrl: "/requests", pad: big })],
      ["application/x-www-form-urlencoded", new URLSearchParams({ csrfToken, callbackUrl: "/requests", pad: big }).toString()],
    ] as const) {
      const response = await post("signin/oidc", type, body);
      expect(response.status, type).toBe(413);
      expect(await response.text()).toBe("The body is larger than 64 KiB.\n");
    }
    // A JSON body of text fields is read as a form is.
    const accepted = await post("signin/oidc", "application/json", JSON.stringify({ csrfToken, callbackUrl: "/requests", json: "true" }));
    expect(accepted.status).toBe(200);
    expect(((await accepted.json()) as { url: string }).url).toMatch(/\/auth\?/);
    // next-auth takes the query's last value.
    const query = await fetch(`${portal.url}/api/auth/signin?callbackUrl=/requests&callbackUrl=/%25`, { redirect: "manual" });
    expect(query.status).toBe(400);
    expect(await query.text()).toBe(`${BAD_CALLBACK_URL}\n`);
  });

  it("drop a hand-written callback-url cookie whose escapes are broken, and sign in to the portal's home", async () => {
    const { csrfToken, cookie: csrfCookie } = await csrf();
    for (const value of ["/%25", "%2F%25E2%2582", "/requests%25zz"]) {
      const response = await signInForm({ csrfToken }, `${csrfCookie}; next-auth.callback-url=${value}`);
      expect(response.status, value).toBe(200);
      expect(((await response.json()) as { url: string }).url).toMatch(/\/auth\?/);
      // The hand-written cookie is replaced by the portal's home.
      const written = response.headers.getSetCookie().filter((c) => c.startsWith("next-auth.callback-url="));
      expect(
        written.map((c) => decodeURIComponent((c.split(";")[0] ?? "").slice("next-auth.callback-url=".length))),
        value,
      ).toEqual([portal.url]);
    }
  });

  it("refuse the property's counterexample of seed 615526567 (a lone % with next-auth's cookies written by hand) with 400", async () => {
    const { csrfToken, cookie: csrfCookie } = await csrf();
    const response = await signInForm({ csrfToken, callbackUrl: "/%" }, `${csrfCookie}; next-auth.callback-url=%20; next-auth.session-token=%20`);
    expect(response.status).toBe(400);
    expect(await response.text()).toBe(`${BAD_CALLBACK_URL}\n`);
  });

  it("never answer 500, whatever the parameters and cookies", async () => {
    const { csrfToken, cookie: csrfCookie } = await csrf();
    const value = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom("http://[::", "\u0000", "//evil.example.com", "/%00", "https://evil.example.com", "constructor", "x".repeat(3000)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          "POST /api/auth/signin/oidc",
          "POST /api/auth/callback/oidc",
          "POST /api/auth/session",
          "POST /api/auth/signout",
          "POST /api/auth/_log",
          "GET /api/auth/signin",
          "GET /signin",
          "GET /api/auth/callback/oidc",
          "GET /api/auth/error",
          "GET /api/auth/session",
        ),
        value,
        fc.constantFrom("callbackUrl", "error", "code", "state", "csrfToken"),
        rawText,
        // A POST's body: a form; JSON whose field is any JSON value; any text sent as JSON (next-auth reads JSON and forms).
        fc.oneof(
          fc.constant({ kind: "form" as const }),
          fc.record({ kind: fc.constant("json" as const), value: fc.jsonValue({ maxDepth: 2 }) }),
          fc.record({ kind: fc.constant("text" as const), text: fc.string({ maxLength: 40 }) }),
        ),
        async (call, v, key, cookieValue, body) => {
          const cookies = `${csrfCookie}; next-auth.callback-url=${cookieValue}; next-auth.session-token=${cookieValue}`;
          const sent =
            body.kind === "form"
              ? { type: "application/x-www-form-urlencoded", text: new URLSearchParams({ csrfToken, [key]: v, json: "true" }).toString() }
              : { type: "application/json", text: body.kind === "json" ? JSON.stringify({ csrfToken, json: "true", [key]: body.value }) : body.text };
          const [method, route] = call.split(" ") as ["GET" | "POST", string];
          const response =
            method === "POST"
              ? await fetch(`${portal.url}${route}`, {
                  method: "POST",
                  headers: { "content-type": sent.type, cookie: cookies },
                  body: sent.text,
                  redirect: "manual",
                })
              : await fetch(`${portal.url}${route}?${key}=${encodeURIComponent(v).replace(/%25/g, "%")}`, { headers: { cookie: cookies }, redirect: "manual" });
          const text = await response.text();
          const asked = method === "POST" ? `(${sent.type}: ${sent.text.slice(0, 80)})` : `${key}=${v.slice(0, 40)}`;
          expect(response.status, `${call} ${asked} → ${text.slice(0, 200)}`).toBeLessThan(500);
          expect(text).not.toMatch(STACK);
        },
      ),
      { numRuns: 80 },
    );
  });
});

describe("forward-auth and the API on the running portal and lean listener", () => {
  it("refuse a session cookie PostgreSQL cannot compare with 401, on both listeners", async () => {
    for (const base of [portal.url, lean]) {
      for (const value of ["%00", "abc%00"]) {
        const { status, text } = await get(`${base}/api/forward-auth`, {
          "x-latchkey-proxy-secret": PROXY_SECRET,
          "x-forwarded-host": "payments.internal",
          "x-forwarded-uri": "/",
          cookie: cookie(value),
        });
        expect(status, `${base} ${value}`).toBe(401);
        expect(text).toBe("The portal session cookie is malformed. Sign in again.\n");
      }
      const real = await get(`${base}/api/forward-auth`, {
        "x-latchkey-proxy-secret": PROXY_SECRET,
        "x-forwarded-host": "payments.internal",
        "x-forwarded-uri": "/",
        cookie: cookie(sessions.alice),
      });
      expect(real.status, base).toBe(403);
    }
  });

  it("refuse names of Object.prototype members as target or workflow ids with the answer for an unknown id", async () => {
    for (const name of ["__proto__", "constructor", "toString"]) {
      const response = await fetch(`${portal.url}/api/v1/requests`, {
        method: "POST",
        headers: { authorization: `Bearer ${aliceToken}`, "content-type": "application/json" },
        body: JSON.stringify({
          workflowId: "temporary-access",
          input: { targetId: name, role: "read", durationMinutes: 30, justification: "probing the target lookup" },
        }),
      });
      expect(response.status, name).toBe(400);
      expect(await response.json()).toMatchObject({ status: 400, code: "invalid", fields: { targetId: `"${name}" is not a target of this workflow.` } });
      const workflow = await fetch(`${portal.url}/api/v1/requests`, {
        method: "POST",
        headers: { authorization: `Bearer ${aliceToken}`, "content-type": "application/json" },
        body: JSON.stringify({ workflowId: name, input: {} }),
      });
      expect(workflow.status, name).toBe(404);
    }
    expect((await get(`${portal.url}/catalog/constructor`, { cookie: cookie(sessions.alice) })).status).toBe(404);
    expect((await get(`${portal.url}/api/v1/requests/a%00b`, { authorization: `Bearer ${aliceToken}` })).status).toBe(400);
  });
});

describe("SCIM on the built portal", () => {
  it("answers a method or a path it does not serve in RFC 7644's error shape, not with Next.js's bare 405 or page", async () => {
    const cases: [string, string, number][] = [
      ["DELETE", "/scim/v2/Groups", 405],
      // Next.js redirects the trailing slash ("." resolves to it) with 308, and fetch follows with the same method.
      ["DELETE", "/scim/v2/Groups/.", 405],
      ["POST", "/scim/v2/ServiceProviderConfig", 405],
      ["GET", "/scim/v2/Nope", 404],
      ["GET", "/scim/v2", 404],
      // RFC 7644 §3.11: a provider that does not support /Me SHOULD answer 501.
      ["GET", "/scim/v2/Me", 501],
      ["PATCH", "/scim/v2/Me", 501],
    ];
    for (const [method, path, status] of cases) {
      const response = await fetch(`${portal.url}${path}`, { method });
      expect(response.status, `${method} ${path}`).toBe(status);
      expect(response.headers.get("content-type"), `${method} ${path}`).toMatch(/^application\/scim\+json/);
      expect(await response.json()).toMatchObject({ schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], status: String(status) });
      if (status === 405) expect(response.headers.get("allow"), `${method} ${path}`).toMatch(/^GET(, POST)?, HEAD, OPTIONS$/);
    }
    // Next.js's own OPTIONS would list every method the route exports, its refusals included.
    const options = await fetch(`${portal.url}/scim/v2/Users`, { method: "OPTIONS" });
    expect(options.status).toBe(204);
    expect(options.headers.get("allow")).toBe("GET, POST, HEAD, OPTIONS");
  });
});

describe("downloads held open", () => {
  /** An export whose body the client does not read: the download stays open, as a stalled browser's does. */
  function openDownload(query: string): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const request = http.get(`${portal.url}/api/history/export?${query}`, { headers: { cookie: cookie(sessions.carol) } }, (response) => {
        response.pause();
        resolve(response);
      });
      request.setTimeout(30_000, () => request.destroy(new Error("the export did not answer within 30 s")));
      request.on("error", reject);
    });
  }
  /**
   * Exports reading from the database now: each holds a connection and a snapshot of its own
   * (lib/history/rows.ts). Connections, not the parallel workers PostgreSQL may give an export's
   * statement, which carry its application name too.
   */
  const exportConnections = async () =>
    Number(
      (
        await db.$queryRaw<{ n: bigint }[]>`
          SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'latchkey history export' AND backend_type = 'client backend'`
      )[0]!.n,
    );
  const exportsRecorded = () => db.auditEvent.count({ where: { action: "history.exported" } });

  it("past four exports at once, the next is answered 503 with Retry-After: 60 and recorded nowhere; a dropped download gives its place and its connection back", async () => {
    // History far larger than the sockets between portal and client can hold (60 MB, three of the
    // export's batches): a download nobody reads keeps its connection and snapshot open.
    const { recordEvent, SYSTEM } = await import("@/lib/audit/record");
    for (let batch = 0; batch < 3; batch++)
      await db.$transaction(
        async (tx) => {
          for (let i = 0; i < 5_000; i++)
            await recordEvent(tx, { actor: SYSTEM, action: "test.bulk_history", data: { n: batch * 5_000 + i, padding: "x".repeat(4_000) } });
        },
        { timeout: 120_000 },
      );
    const query = "format=csv&action=test.bulk_history";
    const held: http.IncomingMessage[] = [];
    try {
      for (let i = 0; i < 4; i++) held.push(await openDownload(query));
      expect(held.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
      // Long enough for each export to have read its history to the end, were it not held back by its reader.
      await new Promise((r) => setTimeout(r, 3_000));
      expect(await exportConnections()).toBe(4);
      const before = await exportsRecorded();
      const refused = await get(`${portal.url}/api/history/export?${query}`, { cookie: cookie(sessions.carol) });
      const again = await fetch(`${portal.url}/api/history/export?format=jsonl`, { headers: { cookie: cookie(sessions.carol) } });
      expect([refused.status, refused.text]).toEqual([503, "4 exports are running on this instance already; try again in a minute.\n"]);
      expect([again.status, again.headers.get("retry-after"), again.headers.get("content-type")]).toEqual([503, "60", "text/plain; charset=utf-8"]);
      await again.arrayBuffer();
      // A refused export is not an export: no audit event says it happened.
      expect(await exportsRecorded()).toBe(before);

      // The browser gives up on one download: its connection ends, its place comes back, and the next export streams to its end.
      held.shift()!.destroy();
      await expect.poll(exportConnections, { timeout: 15_000, interval: 100 }).toBe(3);
      await expect
        .poll(async () => (await get(`${portal.url}/api/history/export?format=jsonl&action=request.created`, { cookie: cookie(sessions.carol) })).status, {
          timeout: 15_000,
          interval: 200,
        })
        .toBe(200);
      // Only one place came back: the other three downloads still hold theirs.
      const fifth = await openDownload(query);
      held.push(fifth);
      expect(fifth.statusCode).toBe(200);
      expect((await get(`${portal.url}/api/history/export?${query}`, { cookie: cookie(sessions.carol) })).status).toBe(503);
    } finally {
      for (const response of held) response.destroy();
    }
    // Every place and every connection comes back once the downloads are dropped.
    await expect.poll(exportConnections, { timeout: 15_000, interval: 100 }).toBe(0);
    await expect
      .poll(
        async () => {
          const statuses = await Promise.all(
            [0, 1, 2, 3].map(async () => {
              const response = await fetch(`${portal.url}/api/history/export?format=csv&action=request.created`, {
                headers: { cookie: cookie(sessions.carol) },
              });
              await response.arrayBuffer();
              return response.status;
            }),
          );
          return statuses.every((s) => s === 200);
        },
        { timeout: 15_000, interval: 200 },
      )
      .toBe(true);
  });
});
