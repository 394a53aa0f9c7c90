import type { PrismaClient } from "@prisma/client";
import { createTestDatabase } from "./database";
import { setTestEnvironment } from "./environment";
import type { Principal } from "@/lib/policy/evaluate";
import type { Role } from "@/lib/policy/schema";

/**
 * An engine wired to a fresh database of its own. Modules are imported after the
 * environment is set, so lib/env.ts reads this file's configuration.
 */
export async function engineFixture(overrides: Record<string, string> = {}) {
  const database = await createTestDatabase();
  setTestEnvironment(database.url, overrides);
  const { db, disconnectDb } = await import("@/lib/db");
  const { rolesForGroups } = await import("@/lib/policy/evaluate");
  const { policy } = await import("@/lib/policy/current");

  async function user(email: string, groups: string[]): Promise<Principal> {
    const roles = rolesForGroups(policy(), groups) as Role[];
    const row = await db.user.upsert({ where: { email }, create: { email, name: email, groups, roles }, update: { groups, roles } });
    return { id: row.id, email, groups, roles };
  }

  return {
    db: db as PrismaClient,
    url: database.url,
    user,
    async close() {
      await step("disconnect Prisma", disconnectDb());
      await step("drop the test database", database.drop());
    },
  };
}

/** Names the teardown step that hangs instead of a bare hook time-out. */
async function step(name: string, work: Promise<unknown>, ms = 20_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`teardown step "${name}" did not finish within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const validInput = (overrides: Record<string, unknown> = {}) => ({
  targetId: "payments-api-staging",
  role: "read",
  durationMinutes: 60,
  justification: "Investigating INC-1234: payment retries failing",
  ...overrides,
});

/**
 * An engine fixture for tests about the credentials grants carry: Alice (engineering, who
 * requests), Bob (engineering-leads, who approves her), and `grant()`, which makes Alice's
 * temporary-access request, has Bob approve it and returns the credential she reveals.
 */
export async function grantingFixture(overrides: Record<string, string> = {}) {
  const fx = await engineFixture(overrides);
  const engine = await import("@/lib/approvals/engine");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  const bob = await fx.user("bob@example.com", ["engineering-leads"]);
  async function grant(): Promise<string> {
    const r = await engine.createRequest(alice, "temporary-access", validInput());
    await engine.decide(bob, { requestId: r.id, decision: "approve", comment: "ok" });
    return (await engine.revealCredential(alice, r.id)).token;
  }
  return { fx, engine, alice, bob, grant };
}
