import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";

let fx: Awaited<ReturnType<typeof engineFixture>>;

beforeAll(async () => {
  fx = await engineFixture();
});
afterAll(() => fx?.close());

describe("sign-in callbacks", () => {
  it("refresh a returning user's groups and roles from the IdP at every sign-in", async () => {
    const { authOptions } = await import("@/lib/auth/options");
    const signIn = authOptions().callbacks!.signIn!;
    await fx.user("frank@example.com", ["engineering"]);
    const provider = authOptions().providers[0] as unknown as {
      options?: { profile: (c: Record<string, unknown>) => Record<string, unknown> };
      profile: (c: Record<string, unknown>) => Record<string, unknown>;
    };
    const claims = { sub: "f1", email: "Frank@Example.com", email_verified: true, name: "Frank", groups: ["engineering-leads"] };
    const profile = (provider.options?.profile ?? provider.profile)(claims);
    expect(profile).toMatchObject({ email: "frank@example.com", groups: ["engineering-leads"], roles: ["requester", "approver"] });
    // For a returning person next-auth passes the stored row as `user`; the provider's answer is `profile`.
    const stored = await fx.db.user.findUniqueOrThrow({ where: { email: "frank@example.com" } });
    expect(await signIn({ user: stored as never, account: null, profile: claims })).toBe(true);
    const row = await fx.db.user.findUniqueOrThrow({ where: { email: "frank@example.com" } });
    expect(row.groups).toEqual(["engineering-leads"]);
    expect(row.roles).toEqual(["requester", "approver"]);
    expect(row.lastSignInAt).not.toBeNull();
  });

  it("refuse a person whose groups map to no role, saying why", async () => {
    const { authOptions } = await import("@/lib/auth/options");
    const signIn = authOptions().callbacks!.signIn!;
    const claims = { sub: "x", email: "guest@example.com", email_verified: true, groups: ["contractors"] };
    const result = await signIn({ user: { id: "x", email: "guest@example.com", groups: ["contractors"], roles: [] } as never, account: null, profile: claims });
    expect(result).toBe("/signin?error=NoRole");
    expect(await fx.db.user.count({ where: { email: "guest@example.com" } })).toBe(0);
  });
});

describe("ending sessions", () => {
  it("an admin ends every session of a user, audited", async () => {
    const { endSessions } = await import("@/lib/auth/users");
    const dave = await fx.user("dave@example.com", ["platform-admins"]);
    const alice = await fx.user("alice@example.com", ["engineering"]);
    const expires = new Date(Date.now() + 3600_000);
    await fx.db.session.createMany({
      data: [
        { sessionToken: "s1", userId: alice.id, expires },
        { sessionToken: "s2", userId: alice.id, expires },
      ],
    });
    const { createPersonalToken, authenticateToken } = await import("@/lib/identity/tokens");
    const { secret } = await createPersonalToken(alice, { name: "laptop", scopes: ["requests:read"], expiresInDays: 30 });
    expect(await endSessions(dave, alice.id)).toEqual({ ended: 2, tokensRevoked: 1 });
    // Offboarding reaches automation too: the person's tokens stop working with their sessions.
    expect(await authenticateToken(secret)).toEqual({ ok: false, reason: "This API token was revoked." });
    expect(await fx.db.session.count({ where: { userId: alice.id } })).toBe(0);
    const event = await fx.db.auditEvent.findFirstOrThrow({ where: { action: "auth.sessions_ended" } });
    expect(event).toMatchObject({ actorEmail: "dave@example.com", data: { email: "alice@example.com", sessions: 2, tokensRevoked: 1 } });
    await expect(endSessions(dave, "no-such-user")).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("API tokens", () => {
  it("authenticate with what the token row says, read as Prisma reads it: scopes as a list, times as times, the last use and address recorded; an expired token is refused", async () => {
    const { createPersonalToken, authenticateToken } = await import("@/lib/identity/tokens");
    const erin = await fx.user("erin@example.com", ["engineering"]);
    const { secret, token } = await createPersonalToken(erin, { name: "ci", scopes: ["requests:read", "requests:write"], expiresInDays: 1 });
    const answer = await authenticateToken(secret, "203.0.113.9");
    expect(answer).toEqual({
      ok: true,
      who: {
        id: erin.id,
        email: erin.email,
        groups: ["engineering"],
        roles: erin.roles,
        via: { kind: "personal_token", tokenId: token.id, scopes: ["requests:read", "requests:write"] },
        requestOnly: false,
      },
    });
    const row = await fx.db.apiToken.findUniqueOrThrow({ where: { id: token.id } });
    expect(row.lastUsedIp).toBe("203.0.113.9");
    expect(row.lastUsedAt!.getTime()).toBeGreaterThan(Date.now() - 10_000);
    // Read with a last use already recorded 5 s ago from the same address: a time, so no new record is due.
    const recent = await createPersonalToken(erin, { name: "recent", scopes: ["requests:read"], expiresInDays: 1 });
    const fiveSecondsAgo = new Date(Date.now() - 5_000);
    await fx.db.apiToken.update({ where: { id: recent.token.id }, data: { lastUsedAt: fiveSecondsAgo, lastUsedIp: "203.0.113.9" } });
    expect(await authenticateToken(recent.secret, "203.0.113.9")).toMatchObject({ ok: true });
    expect((await fx.db.apiToken.findUniqueOrThrow({ where: { id: recent.token.id } })).lastUsedAt).toEqual(fiveSecondsAgo);
    const old = await createPersonalToken(erin, { name: "old", scopes: ["requests:read"], expiresInDays: 1 });
    await fx.db.apiToken.update({ where: { id: old.token.id }, data: { expiresAt: new Date(Date.now() - 1_000) } });
    expect(await authenticateToken(old.secret)).toEqual({ ok: false, reason: "This API token has expired." });
    // A token never read before, of a person deactivated meanwhile (not through the directory, so nothing revoked it).
    const frank = await fx.user("frank@example.com", ["engineering"]);
    const franks = await createPersonalToken(frank, { name: "ci", scopes: ["requests:read"], expiresInDays: 1 });
    await fx.db.user.update({ where: { id: frank.id }, data: { active: false } });
    expect(await authenticateToken(franks.secret)).toEqual({ ok: false, reason: "The identity this API token speaks for was deactivated." });
  });
});

describe("history", () => {
  it("filters by actor, status and date, and pages with a stable cursor", async () => {
    const { searchHistory } = await import("@/lib/history/search");
    const { historyFiltersSchema } = await import("@/lib/history/filters");
    const historyPage = (raw: Record<string, string>, pageSize = 50) => searchHistory(historyFiltersSchema.parse(raw), pageSize);
    const engine = await import("@/lib/approvals/engine");
    const alice = await fx.user("alice@example.com", ["engineering"]);
    const bob = await fx.user("bob@example.com", ["engineering-leads"]);
    for (let i = 0; i < 3; i++) {
      const r = await engine.createRequest(alice, "temporary-access", validInput());
      await engine.decide(bob, { requestId: r.id, decision: i === 0 ? "reject" : "approve", comment: `decision ${i}` });
    }
    const all = await historyPage({}, 200);
    const first = await historyPage({}, 4);
    expect(first.events).toHaveLength(4);
    const second = await historyPage({ after: first.next! }, 4);
    expect([...first.events, ...second.events].map((e) => e.id)).toEqual(all.events.slice(0, 8).map((e) => e.id));

    const byBob = await historyPage({ actor: "BOB@example.com" });
    expect(byBob.events.length).toBe(3);
    expect(new Set(byBob.events.map((e) => e.actorEmail))).toEqual(new Set(["bob@example.com"]));
    expect((await historyPage({ status: "rejected" })).events).toHaveLength(1);
    expect((await historyPage({ status: "active" })).events).toHaveLength(2);
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    expect((await historyPage({ from: day(1) })).events).toHaveLength(0);
    expect((await historyPage({ to: day(-1) })).events).toHaveLength(0);
    expect((await historyPage({ from: day(0), to: day(0) }, 200)).events).toHaveLength(all.events.length);
  });

  it("the query string is validated with clear messages", async () => {
    const { historyFiltersSchema } = await import("@/lib/history/filters");
    expect(historyFiltersSchema.safeParse({ from: "2026-11-01", to: "2026-11-02", status: "active" }).success).toBe(true);
    const bad = historyFiltersSchema.safeParse({ from: "yesterday", status: "gone", before: "abc", sort: "random", workflow: "x;drop" });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => `${String(i.path[0])}: ${i.message}`).sort()).toEqual([
      "before: Bad page cursor.",
      "from: Use a date like 2026-11-25.",
      "sort: Sort by newest or oldest.",
      "status: Unknown status.",
      "workflow: Unknown workflow.",
    ]);
    const inverted = historyFiltersSchema.safeParse({ from: "2026-11-05", to: "2026-11-01" });
    expect(inverted.error!.issues[0]!.message).toBe("The start date is after the end date.");
  });
});
