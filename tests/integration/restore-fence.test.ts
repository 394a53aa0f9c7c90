import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareDatabase } from "../../scripts/support/prepare-database";
import { startDebianPostgres } from "../helpers/debian-postgres";
import { setTestEnvironment } from "../helpers/environment";
import { validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";
import type { Role } from "@/lib/policy/schema";

/**
 * A backup taken before a revocation is restored with pg_dump/pg_restore: the restored data
 * holds the revoked grant as active and its credential is accepted again, until the restore
 * is fenced (detected by the worker's marker, fenced by npm run restore:fence).
 */
const run = promisify(execFile);
let server: Awaited<ReturnType<typeof startDebianPostgres>>;
let url: string;
let dir: string;
let marker: string;
let engine: typeof import("@/lib/approvals/engine");
let fence: typeof import("@/lib/approvals/restore-fence");
let alice: Principal;
let bob: Principal;

async function user(email: string, groups: string[]): Promise<Principal> {
  const { db } = await import("@/lib/db");
  const { rolesForGroups } = await import("@/lib/policy/evaluate");
  const { policy } = await import("@/lib/policy/current");
  const roles = rolesForGroups(policy(), groups) as Role[];
  const row = await db.user.create({ data: { email, name: email, groups, roles } });
  return { id: row.id, email, groups, roles };
}

async function admin(sql: string) {
  const client = new pg.Client({ connectionString: server.adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  server = await startDebianPostgres();
  const u = new URL(server.adminUrl);
  u.pathname = "/latchkey_restore";
  url = u.toString();
  await prepareDatabase(url);
  dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-restore-"));
  marker = path.join(dir, "restore-marker.json");
  setTestEnvironment(url, { LATCHKEY_RESTORE_MARKER: marker, LATCHKEY_KEY_PUBLISH_AHEAD: "0" });
  engine = await import("@/lib/approvals/engine");
  fence = await import("@/lib/approvals/restore-fence");
  alice = await user("alice@example.com", ["engineering"]);
  bob = await user("bob@example.com", ["engineering-leads"]);
}, 180_000);
afterAll(async () => {
  const { disconnectDb } = await import("@/lib/db");
  await disconnectDb();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function grant(): Promise<{ id: string; token: string }> {
  const r = await engine.createRequest(alice, "temporary-access", validInput());
  await engine.decide(bob, { requestId: r.id, decision: "approve", comment: "ok" });
  return { id: r.id, token: (await engine.revealCredential(alice, r.id)).token };
}
// A moment ahead asks the database, not answers kept in memory from before the restore.
const verify = async (token: string) => (await import("@/lib/authz/verify")).verifyCredential(token, new Date(Date.now() + 1500));

describe("restoring a backup taken before a revocation", () => {
  it("is detected, and once fenced the revoked credential stays refused; a re-confirmed grant is kept", { timeout: 240_000 }, async () => {
    const { db } = await import("@/lib/db");
    const [revokedLater, reconfirmed, other] = [await grant(), await grant(), await grant()];
    await db.session.create({ data: { sessionToken: "restored-session", userId: alice.id, expires: new Date(Date.now() + 3600_000) } });
    // The worker keeps the chain head outside the database at each sweep.
    expect(await fence.restoreFenceStep({ type: "system", email: "latchkey" })).toBeNull();
    const backup = path.join(dir, "latchkey.dump");
    await run(`${server.bin}/pg_dump`, ["--format=custom", "--file", backup, url]);

    await engine.revokeGrant(alice, { requestId: revokedLater.id, reason: "done early" });
    expect(await verify(revokedLater.token)).toMatchObject({ ok: false, reason: "The credential was revoked." });
    expect(await fence.restoreFenceStep({ type: "system", email: "latchkey" })).toBeNull();
    const keyBefore = (await db.signingKey.findFirstOrThrow({ where: { status: "active" } })).kid;

    await admin(`DROP DATABASE latchkey_restore WITH (FORCE)`);
    await admin(`CREATE DATABASE latchkey_restore`);
    await run(`${server.bin}/pg_restore`, ["--dbname", url, "--no-owner", backup]);

    // What a restore undoes: the revoked grant is active again and its credential is accepted.
    expect(await db.accessRequest.findUniqueOrThrow({ where: { id: revokedLater.id } })).toMatchObject({ status: "active" });
    expect(await verify(revokedLater.token)).toMatchObject({ ok: true });
    expect(await fence.restoreDetected()).toMatch(/the audit chain ends at #\d+, but it had reached #\d+/);

    const fenced = await run("node_modules/.bin/tsx", ["scripts/restore.ts", "--keep", reconfirmed.id, "--reason", "restored last night's backup"], {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: url,
        LATCHKEY_ENCRYPTION_KEY: process.env.LATCHKEY_ENCRYPTION_KEY,
        LATCHKEY_POLICY_FILE: process.env.LATCHKEY_POLICY_FILE,
        LATCHKEY_RESTORE_MARKER: marker,
      } as unknown as NodeJS.ProcessEnv,
      timeout: 120_000,
    });
    expect(fenced.stdout).toContain(`Revoked 2 grants active in the restored data; kept ${reconfirmed.id} as re-confirmed.`);
    expect(fenced.stdout).toMatch(/Signing key \S+ is active; 1 sessions ended/);

    expect(await verify(revokedLater.token)).toMatchObject({ ok: false, reason: "The credential was revoked." });
    expect(await verify(other.token)).toMatchObject({ ok: false, reason: "The credential was revoked." });
    expect(await verify(reconfirmed.token)).toMatchObject({ ok: true });
    expect(await db.accessRequest.findUniqueOrThrow({ where: { id: revokedLater.id } })).toMatchObject({ status: "revoked" });
    expect((await db.signingKey.findFirstOrThrow({ where: { status: "active" } })).kid).not.toBe(keyBefore);
    expect(await db.session.count()).toBe(0);
    const event = await db.auditEvent.findFirstOrThrow({ where: { action: "restore.fenced" } });
    expect(event).toMatchObject({
      actorEmail: "npm run restore:fence",
      data: { reason: "restored last night's backup", revoked: 2, reconfirmed: [reconfirmed.id], sessionsEnded: 1 },
    });
    // Each revocation is audited on its own, by the command, with the fence's reason.
    const revocations = await db.auditEvent.findMany({ where: { action: "grant.revoked", actorEmail: "npm run restore:fence" } });
    expect(revocations.map((e) => e.requestId).sort()).toEqual([revokedLater.id, other.id].sort());
    for (const e of revocations) expect(e.data).toMatchObject({ reason: "restore fence: restored last night's backup" });

    // The marker follows the fenced database: nothing more to fence, and the chain verifies.
    expect(await fence.restoreDetected()).toBeNull();
    expect(await fence.restoreFenceStep({ type: "system", email: "latchkey" })).toBeNull();
    const { walkChain } = await import("@/lib/audit/verify");
    expect((await walkChain()).ok).toBe(true);
  });

  it(
    "records a marker matching the database even when the fence's own events cannot be linked first, so the next sweep fences nothing again",
    { timeout: 180_000 },
    async () => {
      const kept = await grant();
      // Another chainer holds its lock through the whole fence: the marker step waits its time (2 s here, 30 s by default), then records the head as it is.
      const holder = new pg.Client({ connectionString: url });
      await holder.connect();
      await holder.query(`SELECT pg_advisory_lock(hashtext('latchkey.audit-chainer'))`);
      try {
        const result = await fence.fenceRestoredState({ type: "system", email: "latchkey" }, "lock held elsewhere", [kept.id], { chainWaitMs: 2_000 });
        expect(result.kept).toEqual([kept.id]);
      } finally {
        await holder.end();
      }
      expect(await fence.restoreDetected()).toBeNull();
      expect(await fence.restoreFenceStep({ type: "system", email: "latchkey" })).toBeNull();
      expect(await verify(kept.token)).toMatchObject({ ok: true });
      const { db } = await import("@/lib/db");
      expect(await db.auditEvent.count({ where: { action: "restore.fenced", data: { path: ["reason"], equals: "lock held elsewhere" } } })).toBe(1);
    },
  );
});
