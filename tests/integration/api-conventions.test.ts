import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * The conventions API clients expect of /api/v1, against the real routes and a real
 * database: RFC 9457 problem details, cursor pagination with next links, 201 with
 * Location, Idempotency-Key on request creation, and RateLimit-* headers.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let alice: Principal;
let bob: Principal;
const t: Record<string, string> = {};

beforeAll(async () => {
  fx = await engineFixture();
  const tokens = await import("@/lib/identity/tokens");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  t.alice = (await tokens.createPersonalToken(alice, { name: "laptop", scopes: ["requests:read", "requests:write"], expiresInDays: 30 })).secret;
  t.bob = (await tokens.createPersonalToken(bob, { name: "bot", scopes: ["requests:read", "requests:write", "approvals:write"], expiresInDays: 30 })).secret;
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

async function call(token: string | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(new URL(path.startsWith("/api/") ? path : `/api/v1${path}`, api.url), {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers };
}

const make = (token: string, input = validInput(), headers: Record<string, string> = {}) =>
  call(token, "POST", "/requests", { workflowId: "temporary-access", input }, headers);

describe("problem details (RFC 9457)", () => {
  it("answers every refusal as application/problem+json with type, title, status, detail and the code", async () => {
    const none = await call(null, "GET", "/requests");
    expect(none.status).toBe(401);
    expect(none.headers.get("content-type")).toBe("application/problem+json");
    expect(none.body).toEqual({
      type: "urn:latchkey:problem:unauthenticated",
      title: "Not authenticated",
      status: 401,
      detail: "Send an API token: Authorization: Bearer <token>.",
      code: "unauthenticated",
    });

    const bad = await make(t.alice!, validInput({ durationMinutes: 10_000 }));
    expect(bad.headers.get("content-type")).toBe("application/problem+json");
    expect(bad.body).toMatchObject({
      type: "urn:latchkey:problem:invalid",
      status: 400,
      code: "invalid",
      fields: { durationMinutes: expect.stringMatching(/between 15m and 8h/) },
    });

    const missing = await call(t.alice!, "GET", "/requests/cl000000000000000000000000");
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ type: "urn:latchkey:problem:not_found", status: 404, code: "not_found" });
    // The status member agrees with the HTTP status, so a client reading either gets the same answer.
    for (const r of [none, bad, missing]) expect(r.body.status).toBe(r.status);
  });
});

describe("cursor pagination", () => {
  it("pages through a list with limit and next links, without repeats or gaps, also when rows are added meanwhile", async () => {
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await make(t.alice!, validInput({ justification: `page test ${i}` }))).body.id);
    const seen: string[] = [];
    let path: string | null = "/requests?limit=2";
    let pages = 0;
    while (path) {
      const page = await call(t.alice!, "GET", path);
      expect(page.status).toBe(200);
      expect(page.body.requests.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.requests.map((r: { id: string }) => r.id));
      if (page.body.next) expect(page.headers.get("link")).toBe(`<${page.body.next}>; rel="next"`);
      else expect(page.headers.get("link")).toBeNull();
      // A request made between pages is newer than the cursor: it does not shift what follows.
      if (pages === 0) made.push((await make(t.alice!, validInput({ justification: "made while paging" }))).body.id);
      path = page.body.next;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(made.slice(0, 5).reverse());
    const everything = await call(t.alice!, "GET", "/requests");
    expect(everything.body.requests.map((r: { id: string }) => r.id)).toEqual([...made].reverse());
    expect(everything.body.next).toBeNull();
  });

  it("pages the approvals inbox oldest first and the workflows list", async () => {
    const first = await call(t.bob!, "GET", "/approvals?limit=1");
    expect(first.body.requests).toHaveLength(1);
    const second = await call(t.bob!, "GET", first.body.next);
    expect(second.body.requests).toHaveLength(1);
    expect(new Date(second.body.requests[0].createdAt).getTime()).toBeGreaterThanOrEqual(new Date(first.body.requests[0].createdAt).getTime());
    expect(second.body.requests[0].id).not.toBe(first.body.requests[0].id);

    const all = (await call(t.alice!, "GET", "/workflows")).body.workflows.map((w: { id: string }) => w.id);
    expect(all.length).toBeGreaterThan(1);
    const paged: string[] = [];
    for (let path: string | null = "/workflows?limit=1"; path;) {
      const page = await call(t.alice!, "GET", path);
      paged.push(...page.body.workflows.map((w: { id: string }) => w.id));
      path = page.body.next;
    }
    expect(paged).toEqual(all);
  });

  it("refuses a bad limit or a cursor Latchkey did not give out with 400 naming the parameter", async () => {
    for (const limit of ["0", "201", "abc", "1.5"]) {
      const r = await call(t.alice!, "GET", `/requests?limit=${limit}`);
      expect(r.status).toBe(400);
      expect(r.body.fields.limit).toMatch(/whole number from 1 to 200/);
    }
    for (const cursor of ["nope!", Buffer.from('["not a time","x"]').toString("base64url"), Buffer.from("{}").toString("base64url")]) {
      const r = await call(t.alice!, "GET", `/requests?cursor=${encodeURIComponent(cursor)}`);
      expect(r.status).toBe(400);
      expect(r.body.fields.cursor).toMatch(/not one Latchkey gave out/);
    }
    expect((await call(t.alice!, "GET", `/workflows?cursor=${Buffer.from('["workflow","gone"]').toString("base64url")}`)).status).toBe(400);
    // A hand-made cursor whose id PostgreSQL cannot store is refused as a bad cursor, never a 500, on every list that pages by id.
    const nul = Buffer.from(JSON.stringify(["2026-01-01T00:00:00.000Z", "req\u0000x"])).toString("base64url");
    for (const [token, list] of [
      [t.alice!, "/requests"],
      [t.bob!, "/approvals"],
    ] as const) {
      const r = await call(token, "GET", `${list}?cursor=${nul}`);
      expect(r.status, list).toBe(400);
      expect(r.body.fields.cursor, list).toMatch(/not one Latchkey gave out/);
    }
  });
});

describe("creation", () => {
  it("answers 201 with a Location that reads the new request", async () => {
    const made = await make(t.alice!);
    expect(made.status).toBe(201);
    expect(made.headers.get("location")).toBe(`/api/v1/requests/${made.body.id}`);
    const read = await call(t.alice!, "GET", made.headers.get("location")!);
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(made.body.id);
  });
});

describe("Idempotency-Key", () => {
  const requestsOf = (who: Principal) => fx.db.accessRequest.count({ where: { requesterId: who.id } });

  it("replays the first answer for the same key and body, and makes one request audited once", async () => {
    const before = await requestsOf(alice);
    const first = await make(t.alice!, validInput({ justification: "deploy build 42 to staging" }), { "idempotency-key": "deploy-42" });
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    // The same body with its keys in another order is the same body.
    const input = validInput({ justification: "deploy build 42 to staging" });
    const reordered = Object.fromEntries(Object.entries(input).reverse());
    const again = await call(t.alice!, "POST", "/requests", { input: reordered, workflowId: "temporary-access" }, { "idempotency-key": "deploy-42" });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("location")).toBe(first.headers.get("location"));
    expect(again.body).toEqual(first.body);
    expect(await requestsOf(alice)).toBe(before + 1);
    expect(await fx.db.auditEvent.count({ where: { requestId: first.body.id, action: "request.created" } })).toBe(1);
  });

  it("refuses the same key with another body with 422, and keys are per identity", async () => {
    expect((await make(t.alice!, validInput({ justification: "first body" }), { "idempotency-key": "k-422" })).status).toBe(201);
    const before = await requestsOf(alice);
    const other = await make(t.alice!, validInput({ justification: "second body" }), { "idempotency-key": "k-422" });
    expect(other.status).toBe(422);
    expect(other.headers.get("content-type")).toBe("application/problem+json");
    expect(other.body).toMatchObject({ status: 422, code: "idempotency_key_reused" });
    expect(await requestsOf(alice)).toBe(before);
    // Bob's key of the same name is his own.
    const bobs = await make(t.bob!, validInput({ justification: "first body" }), { "idempotency-key": "k-422" });
    expect(bobs.status).toBe(201);
    expect(bobs.body.requester).toBe("bob@example.com");
  });

  it("makes exactly one request when the same call arrives many times at once", async () => {
    const before = await requestsOf(alice);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => make(t.alice!, validInput({ justification: "retry storm" }), { "idempotency-key": "storm-1" })),
    );
    const ids = new Set(answers.map((a) => a.body.id));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(201));
    expect(ids.size).toBe(1);
    expect(await requestsOf(alice)).toBe(before + 1);
    expect(answers.filter((a) => a.headers.get("idempotent-replayed") === "true")).toHaveLength(7);
  });

  it("keeps a key for 24 hours: after that the same key makes a new request, even with another body", async () => {
    const first = await make(t.alice!, validInput({ justification: "nightly rollout" }), { "idempotency-key": "nightly" });
    expect(first.status).toBe(201);
    await fx.db.idempotencyKey.updateMany({ where: { key: "nightly" }, data: { createdAt: new Date(Date.now() - 24 * 3_600_000 - 60_000) } });
    const before = await requestsOf(alice);
    const next = await make(t.alice!, validInput({ justification: "nightly rollout, the next night" }), { "idempotency-key": "nightly" });
    expect(next.status).toBe(201);
    expect(next.headers.get("idempotent-replayed")).toBeNull();
    expect(next.body.id).not.toBe(first.body.id);
    expect(await requestsOf(alice)).toBe(before + 1);
  });

  it("remembers nothing of a refused call, so the corrected retry is judged afresh; a malformed key is a 400", async () => {
    const refused = await make(t.alice!, validInput({ durationMinutes: 10_000 }), { "idempotency-key": "fix-me" });
    expect(refused.status).toBe(400);
    const fixed = await make(t.alice!, validInput(), { "idempotency-key": "fix-me" });
    expect(fixed.status).toBe(201);
    const long = await make(t.alice!, validInput(), { "idempotency-key": "x".repeat(256) });
    expect(long.status).toBe(400);
    expect(long.body.fields["Idempotency-Key"]).toMatch(/1–255 visible ASCII/);
  });
});

describe("rate-limit headers", () => {
  it("tell every answer, refusals included, the token's limit, what is left and when the window resets", async () => {
    const ok = await call(t.alice!, "GET", "/me");
    const refused = await call(t.alice!, "GET", "/approvals");
    for (const r of [ok, refused]) {
      expect(r.headers.get("ratelimit-limit")).toBe("300");
      expect(Number(r.headers.get("ratelimit-remaining"))).toBeLessThan(300);
      expect(Number(r.headers.get("ratelimit-reset"))).toBeGreaterThan(0);
    }
    expect(refused.status).toBe(403);
  });
});
