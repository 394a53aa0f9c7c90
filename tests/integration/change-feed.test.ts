import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { sql } from "../helpers/database";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * Credential and token answers are kept in memory while the instance hears changes from
 * PostgreSQL (lib/db/changes.ts). Most of these tests change rows with plain SQL, behind the
 * application's back, so what they prove is the database triggers and the feed; the last
 * one revokes through the engine with the triggers off, and proves the process's own
 * forgetting at commit.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let changes: typeof import("@/lib/db/changes");
let verifyCredential: typeof import("@/lib/authz/verify").verifyCredential;
let tokens: typeof import("@/lib/identity/tokens");
let alice: Principal;
let bob: Principal;

beforeAll(async () => {
  fx = await engineFixture();
  engine = await import("@/lib/approvals/engine");
  changes = await import("@/lib/db/changes");
  tokens = await import("@/lib/identity/tokens");
  ({ verifyCredential } = await import("@/lib/authz/verify"));
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  await fx?.close();
});

async function live() {
  for (let i = 0; i < 100 && !changes.changesLive(); i++) await new Promise((r) => setTimeout(r, 50));
  expect(changes.changesLive()).toBe(true);
}

async function grant(): Promise<{ requestId: string; token: string; jti: string }> {
  const request = await engine.createRequest(alice, "temporary-access", validInput());
  await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
  const { token } = await engine.revealCredential(alice, request.id);
  const {
    rows: [row],
  } = await sql(fx.url, `SELECT id FROM "Credential" WHERE "requestId" = $1`, [request.id]);
  return { requestId: request.id, token, jti: row!.id as string };
}

/** Runs `work` with the change triggers off: nobody is told of what it does. */
async function unannounced(work: () => Promise<unknown>) {
  await sql(fx.url, `ALTER TABLE "Credential" DISABLE TRIGGER "Credential_changes"`);
  try {
    await work();
  } finally {
    await sql(fx.url, `ALTER TABLE "Credential" ENABLE TRIGGER "Credential_changes"`);
  }
}

describe("answers kept in memory", () => {
  it("are used: a revocation nobody announces is not seen while the answer is kept", async () => {
    await live();
    const { token, jti } = await grant();
    expect((await verifyCredential(token)).ok).toBe(true);
    await unannounced(() => sql(fx.url, `UPDATE "Credential" SET "revokedAt" = now() WHERE id = $1`, [jti]));
    // The kept answer (this is what makes a decision cost no query)...
    expect((await verifyCredential(token)).ok).toBe(true);
    // ...and the database's, for a check "as of" another moment, which is never kept.
    expect(await verifyCredential(token, new Date(Date.now() + 5_000))).toEqual({ ok: false, reason: "The credential was revoked." });
  });

  it("are dropped the moment a revocation commits, however it was made", async () => {
    await live();
    const { token, jti } = await grant();
    expect((await verifyCredential(token)).ok).toBe(true);
    await sql(fx.url, `UPDATE "Credential" SET "revokedAt" = now() WHERE id = $1`, [jti]);
    // The notification is sent at commit; it is read within milliseconds.
    await new Promise((r) => setTimeout(r, 10));
    expect(await verifyCredential(token)).toEqual({ ok: false, reason: "The credential was revoked." });
  });

  it("are dropped when the grant ends or its holder changes", async () => {
    await live();
    const ended = await grant();
    expect((await verifyCredential(ended.token)).ok).toBe(true);
    await sql(fx.url, `UPDATE "AccessRequest" SET status = 'revoked' WHERE id = $1`, [ended.requestId]);
    await new Promise((r) => setTimeout(r, 20));
    expect(await verifyCredential(ended.token)).toMatchObject({ ok: false, reason: "The grant behind this credential is revoked." });

    const held = await grant();
    const before = await verifyCredential(held.token);
    expect(before.ok && before.user.groups).toEqual(["engineering"]);
    await sql(fx.url, `UPDATE "User" SET groups = '{engineering,on-call}' WHERE id = $1`, [alice.id]);
    await new Promise((r) => setTimeout(r, 20));
    const after = await verifyCredential(held.token);
    expect(after.ok && after.user.groups).toEqual(["engineering", "on-call"]);
    await sql(fx.url, `UPDATE "User" SET groups = '{engineering}' WHERE id = $1`, [alice.id]);
  });

  it("are not used while the feed is down, and again once it is back", async () => {
    await live();
    const { token, jti } = await grant();
    expect((await verifyCredential(token)).ok).toBe(true);
    await sql(fx.url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'latchkey-changes' AND datname = current_database()`);
    for (let i = 0; i < 100 && changes.changesLive(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(changes.changesLive()).toBe(false);
    // Unannounced, and still refused: with the feed down every answer comes from the database.
    await unannounced(() => sql(fx.url, `UPDATE "Credential" SET "revokedAt" = now() WHERE id = $1`, [jti]));
    expect(await verifyCredential(token)).toEqual({ ok: false, reason: "The credential was revoked." });
    await live();
    const again = await grant();
    expect((await verifyCredential(again.token)).ok).toBe(true);
  });

  it("for API tokens: revoking or changing a token reaches an instance that had it in memory", async () => {
    await live();
    const { secret } = await tokens.createPersonalToken(alice, { name: "feed", scopes: ["requests:read"], expiresInDays: 1 });
    const first = await tokens.authenticateToken(secret, "192.0.2.1");
    expect(first.ok && first.who.via?.scopes).toEqual(["requests:read"]);
    await sql(fx.url, `UPDATE "ApiToken" SET scopes = '{requests:read,requests:write}' WHERE "tokenHash" = encode(sha256($1::bytea), 'hex')`, [secret]);
    await new Promise((r) => setTimeout(r, 20));
    const widened = await tokens.authenticateToken(secret, "192.0.2.1");
    expect(widened.ok && widened.who.via?.scopes).toEqual(["requests:read", "requests:write"]);
    await sql(fx.url, `UPDATE "ApiToken" SET "revokedAt" = now() WHERE "tokenHash" = encode(sha256($1::bytea), 'hex')`, [secret]);
    await new Promise((r) => setTimeout(r, 20));
    expect(await tokens.authenticateToken(secret, "192.0.2.1")).toEqual({ ok: false, reason: "This API token was revoked." });
  });
});

describe("changes this process commits", () => {
  it("a grant it ends is forgotten by its own caches at commit, without waiting for the notification", async () => {
    await live();
    const { requestId, token } = await grant();
    expect((await verifyCredential(token)).ok).toBe(true);
    // No notification will come (neither the request's nor the credential's): what refuses the credential is this process knowing what it committed.
    await sql(fx.url, `ALTER TABLE "AccessRequest" DISABLE TRIGGER "AccessRequest_changes"`);
    try {
      await unannounced(async () => {
        await engine.revokeGrant(alice, { requestId, reason: "done early" });
        expect(await verifyCredential(token)).toMatchObject({ ok: false });
      });
    } finally {
      await sql(fx.url, `ALTER TABLE "AccessRequest" ENABLE TRIGGER "AccessRequest_changes"`);
    }
  });

  it("an API token this process revokes is refused at once, without waiting for the notification", async () => {
    await live();
    const { secret, token } = await tokens.createPersonalToken(alice, { name: "revoked here", scopes: ["requests:read"], expiresInDays: 1 });
    expect((await tokens.authenticateToken(secret)).ok).toBe(true);
    await sql(fx.url, `ALTER TABLE "ApiToken" DISABLE TRIGGER "ApiToken_changes"`);
    try {
      await tokens.revokeToken(alice, token.id);
      expect(await tokens.authenticateToken(secret)).toMatchObject({ ok: false });
    } finally {
      await sql(fx.url, `ALTER TABLE "ApiToken" ENABLE TRIGGER "ApiToken_changes"`);
    }
  });
});
