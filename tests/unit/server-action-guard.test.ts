import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { callbackUrlProblem, safeRedirect, unusableCallbackCookies } from "@/lib/auth/callback-url";
import { ACTION_BODY_LIMIT, checkActionPost, portalHost } from "@/lib/http/server-action-guard";

/**
 * The checks middleware makes on a post before Next.js runs a server action, and the
 * sign-in callbackUrl rule, as pure functions: each refusal has its status and message,
 * and nothing thrown escapes whatever the headers and body.
 */

const settings = { allowedOrigins: ["portal.example.com", "*.corp.example.com"], fromProxy: false };
const call = (headers: Record<string, string>, body = '[{"reason":""}]', method = "POST") => ({
  method,
  headers: new Headers({
    host: "localhost:3000",
    origin: "http://localhost:3000",
    "next-action": "abc",
    "content-type": "text/plain;charset=UTF-8",
    ...headers,
  }),
  body: async () => body,
});

describe("server-action posts", () => {
  it("pass from the portal's own origin or an allowed one", async () => {
    expect(await checkActionPost(call({}), settings)).toBeNull();
    expect(await checkActionPost(call({ origin: "https://portal.example.com" }), settings)).toBeNull();
    expect(await checkActionPost(call({ origin: "https://team.corp.example.com" }), settings)).toBeNull();
    expect(await checkActionPost(call({ origin: "https://evil.example.com" }, "{broken", "GET"), settings)).toBeNull();
  });

  it("refuse another origin, an unparsable one, none at all, and a wildcard's bare domain with 403", async () => {
    for (const origin of ["https://evil.example.com", "null", "not a url", "ftp://localhost:3000", "https://corp.example.com"]) {
      expect((await checkActionPost(call({ origin }), settings))?.status, origin).toBe(403);
    }
    const headers = new Headers({ host: "localhost:3000", "next-action": "abc", "content-type": "text/plain" });
    expect(await checkActionPost({ method: "POST", headers, body: async () => "[]" }, settings)).toEqual({
      status: 403,
      message: "Posts without an Origin header are refused: only the portal's own pages may call its actions.",
    });
  });

  it("honour X-Forwarded-Host only from a configured proxy", async () => {
    const forwarded = call({ origin: "https://evil.example.com", "x-forwarded-host": "evil.example.com" });
    expect((await checkActionPost(forwarded, settings))?.status).toBe(403);
    expect(await checkActionPost(forwarded, { ...settings, fromProxy: true })).toBeNull();
    expect(portalHost(new Headers({ host: "a", "x-forwarded-host": "b, c" }), true)).toBe("b");
    expect(portalHost(new Headers({ host: "a", "x-forwarded-host": "b" }), false)).toBe("a");
  });

  it("refuse size, type and shape with 413, 415 and 400", async () => {
    expect(await checkActionPost(call({ "content-length": String(ACTION_BODY_LIMIT + 1) }), settings)).toEqual({
      status: 413,
      message: "The body is larger than 256 KiB.",
    });
    expect((await checkActionPost(call({}, JSON.stringify(["é".repeat(ACTION_BODY_LIMIT / 2)])), settings))?.status).toBe(413);
    expect((await checkActionPost(call({ "content-type": "multipart/form-data; boundary=x" }), settings))?.status).toBe(415);
    const form = call({ "content-type": "application/x-www-form-urlencoded" });
    form.headers.delete("next-action");
    expect((await checkActionPost(form, settings))?.status).toBe(415);
    expect(await checkActionPost(call({}, "{"), settings)).toEqual({ status: 400, message: "The action's arguments are not valid JSON." });
    expect(await checkActionPost(call({}, "{}"), settings)).toEqual({ status: 400, message: "The action's arguments must be a JSON array." });
    expect(await checkActionPost(call({}, `${"[".repeat(40)}${"]".repeat(40)}`), settings)).toEqual({
      status: 400,
      message: "The action's arguments nest deeper than 32 levels.",
    });
    expect(await checkActionPost(call({}, '[{"a":"$@1"}]'), settings)).toEqual({ status: 400, message: "The action's arguments may hold plain values only." });
    expect(await checkActionPost(call({}, '[{"a":"$$escaped","b":"$undefined","c":"$D2026-01-01T00:00:00.000Z"}]'), settings)).toBeNull();
  });

  it("never throw, whatever the headers and body", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string(),
        fc.oneof(fc.string(), fc.json()),
        fc.constantFrom("text/plain", "multipart/form-data", "", "application/json"),
        fc.boolean(),
        async (origin, body, type, fromProxy) => {
          const outcome = await checkActionPost(call({ origin: origin.replace(/[\r\n\0]/g, ""), "content-type": type }, body), { ...settings, fromProxy });
          if (outcome) expect([400, 403, 413, 415]).toContain(outcome.status);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("sign-in callbackUrl", () => {
  it("is a path on the portal or an http(s) URL; anything else is named", () => {
    for (const ok of [
      "/requests",
      "/history?q=a",
      "/history?q=caf%C3%A9%20x",
      `/${"x".repeat(1999)}`,
      "https://latchkey.example.com/x",
      "http://localhost:3000/",
      "",
      null,
      undefined,
    ])
      expect(callbackUrlProblem(ok), String(ok)).toBeNull();
    for (const bad of [
      "http://[::",
      ":::",
      "a\u0000b",
      "\ud800",
      "http://exa mple.com",
      "javascript:alert(1)",
      "/\u0000",
      "/a\nb",
      "/%",
      "/a%zz",
      "/%E2%82",
      "https://x.example/%ff",
      `/${"x".repeat(2000)}`,
      // From a JSON body.
      1,
      ["/requests"],
      { href: "/requests" },
    ]) {
      expect(callbackUrlProblem(bad), String(bad)).toBe("callbackUrl must be a path on this portal (such as /requests) or an http(s) URL.");
    }
  });

  it("a callback-url cookie next-auth would choke on is named for deletion, a usable or empty one is not", () => {
    const jar = [
      { name: "a", value: " " },
      { name: "next-auth.callback-url", value: " " },
      { name: "__Secure-next-auth.callback-url", value: "http://[::" },
    ];
    expect(unusableCallbackCookies(jar)).toEqual(["next-auth.callback-url", "__Secure-next-auth.callback-url"]);
    expect(
      unusableCallbackCookies([
        { name: "next-auth.callback-url", value: "/requests" },
        { name: "__Secure-next-auth.callback-url", value: "" },
      ]),
    ).toEqual([]);
    expect(unusableCallbackCookies([{ name: "next-auth.callback-url", value: "\u0000" }])).toEqual(["next-auth.callback-url"]);
  });

  it("sends a person only to the portal's own origin, and never throws", () => {
    const baseUrl = "https://latchkey.example.com";
    expect(safeRedirect({ url: "/requests", baseUrl })).toBe(`${baseUrl}/requests`);
    expect(safeRedirect({ url: `${baseUrl}/history`, baseUrl })).toBe(`${baseUrl}/history`);
    expect(safeRedirect({ url: "https://evil.example.com/", baseUrl })).toBe(baseUrl);
    expect(safeRedirect({ url: "http://[::", baseUrl })).toBe(baseUrl);
    // A broken escape in what next-auth would write back as its cookie: Next.js could not read it again.
    expect(safeRedirect({ url: "/%", baseUrl })).toBe(baseUrl);
    expect(safeRedirect({ url: `${baseUrl}/%E2%82`, baseUrl })).toBe(baseUrl);
    fc.assert(fc.property(fc.string(), (url) => void safeRedirect({ url, baseUrl })));
  });
});
