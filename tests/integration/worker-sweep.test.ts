import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "../helpers/database";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startWorkerProcess, sweepNow, type WorkerProcess } from "../helpers/worker-process";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * What the worker does by itself at its every-minute sweep, run as its own process against a
 * real database: it fences a restore nobody fenced (README "Backup and restore",
 * LATCHKEY_RESTORE_MARKER), logs an error when more signing keys are published than there
 * are key files (docs/SECURITY.md "Rotating at once, and key files nobody reloads"), and
 * re-seals under the current encryption key while previous keys are configured (README
 * "Changing the encryption key", step 2). The CLI paths have tests of their own.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal;
let bob: Principal;
let dir: string;
let marker: string;
let keyDir: string;
let worker: WorkerProcess | undefined;
const keyA = randomBytes(32).toString("base64");
const keyB = randomBytes(32).toString("base64");
const idOf = (b64: string) => `ek-${createHmac("sha256", Buffer.from(b64, "base64")).update("latchkey encryption key id").digest("hex").slice(0, 16)}`;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-worker-sweep-"));
  marker = path.join(dir, "restore-marker.json");
  keyDir = path.join(dir, "keys");
  fx = await engineFixture({ LATCHKEY_ENCRYPTION_KEY: keyA, LATCHKEY_RESTORE_MARKER: marker, LATCHKEY_KEY_PUBLISH_AHEAD: "0" });
  engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  await worker?.stop();
  await fx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Starts the worker, stopping first one a failed test left running (so one failure does not become three). */
async function runWorker(extra: Record<string, string> = {}) {
  await stopWorker();
  worker = await startWorkerProcess({
    DATABASE_URL: fx.url,
    LATCHKEY_ENCRYPTION_KEY: keyA,
    LATCHKEY_RESTORE_MARKER: marker,
    LATCHKEY_KEY_PUBLISH_AHEAD: "0",
    ...extra,
  });
  return worker;
}
async function stopWorker() {
  await worker?.stop();
  worker = undefined;
}

async function grant(): Promise<{ id: string; token: string }> {
  const r = await engine.createRequest(alice, "temporary-access", validInput());
  await engine.decide(bob, { requestId: r.id, decision: "approve", comment: "ok" });
  return { id: r.id, token: (await engine.revealCredential(alice, r.id)).token };
}
// A moment ahead asks the database, not answers kept in memory from before the restore.
const verify = async (token: string) => (await import("@/lib/authz/verify")).verifyCredential(token, new Date(Date.now() + 1500));
const markerSeq = () => (existsSync(marker) ? BigInt((JSON.parse(readFileSync(marker, "utf8")) as { seq: string }).seq) : null);
const headSeq = async () => BigInt((await sql(fx.url, `SELECT "lastSeq" FROM "AuditChainHead" WHERE id = 1`)).rows[0].lastSeq);

/**
 * Runs the sweep and checks its marker: it covers every event committed before the sweep (this
 * process links them first, so the head is read after them), and names a place the chain holds,
 * with that event's hash. The head may have moved past it by the time the sweep ends: the worker
 * also runs the jobs waiting for it (notifications of the grants made here), whose events the
 * chainer links later. Returns the marker's place.
 */
async function sweepAndCheckMarker(): Promise<bigint> {
  await (await import("@/lib/audit/chainer")).chainEverythingCommitted();
  const before = await headSeq();
  await sweepNow(fx.url);
  const { seq, hash } = JSON.parse(readFileSync(marker, "utf8")) as { seq: string; hash: string };
  expect(BigInt(seq)).toBeGreaterThanOrEqual(before);
  expect(BigInt(seq)).toBeLessThanOrEqual(await headSeq());
  expect((await sql(fx.url, `SELECT hash FROM "AuditEvent" WHERE seq = $1`, [seq])).rows[0]?.hash).toBe(hash);
  return BigInt(seq);
}

/** Copies the database as a snapshot does, or puts a copy back in its place; nothing may be connected to either meanwhile. */
async function copyDatabase(from: string, to: string) {
  const { disconnectDb } = await import("@/lib/db");
  await disconnectDb();
  const admin = new URL(fx.url);
  admin.pathname = "/postgres";
  await sql(admin.toString(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN ($1, $2) AND pid <> pg_backend_pid()`, [from, to]);
  await sql(admin.toString(), `DROP DATABASE IF EXISTS "${to}" WITH (FORCE)`);
  await sql(admin.toString(), `CREATE DATABASE "${to}" TEMPLATE "${from}"`);
}

describe("the worker's restore fence", () => {
  it("keeps the chain head in the marker at each sweep; after a restore nobody fenced, it fences by itself, once", { timeout: 300_000 }, async () => {
    const live = new URL(fx.url).pathname.slice(1);
    const backup = `${live}_backup`;
    const [revokedLater, other] = [await grant(), await grant()];
    await fx.db.session.create({ data: { sessionToken: "restored-session", userId: alice.id, expires: new Date(Date.now() + 3600_000) } });

    await runWorker();
    await sweepAndCheckMarker();
    await stopWorker();
    await copyDatabase(live, backup);

    // After the backup: a revocation, seen by the worker's next sweep, which moves the marker past the backup.
    await engine.revokeGrant(alice, { requestId: revokedLater.id, reason: "done early" });
    expect(await verify(revokedLater.token)).toMatchObject({ ok: false, reason: "The credential was revoked." });
    const revokedAt = await headSeq();
    await runWorker();
    const reached = await sweepAndCheckMarker();
    expect(reached).toBeGreaterThan(revokedAt);
    await stopWorker();

    await copyDatabase(backup, live);
    await sql(new URL(fx.url).toString().replace(`/${live}`, "/postgres"), `DROP DATABASE "${backup}"`);
    expect(await fx.db.accessRequest.findUniqueOrThrow({ where: { id: revokedLater.id } })).toMatchObject({ status: "active" });
    expect(await verify(revokedLater.token)).toMatchObject({ ok: true });
    expect(await headSeq()).toBeLessThan(reached);
    const keyBefore = (await fx.db.signingKey.findFirstOrThrow({ where: { status: "active" } })).kid;

    await runWorker();
    const fencedAt = await sweepAndCheckMarker();
    const fenced = await fx.db.auditEvent.findMany({ where: { action: "restore.fenced" } });
    expect(fenced).toHaveLength(1);
    expect(fenced[0]).toMatchObject({ actorType: "system", data: { revoked: 2, reconfirmed: [], sessionsEnded: 1 } });
    expect(await verify(revokedLater.token)).toMatchObject({ ok: false, reason: "The credential was revoked." });
    expect(await verify(other.token)).toMatchObject({ ok: false, reason: "The credential was revoked." });
    expect(await fx.db.session.count()).toBe(0);
    expect((await fx.db.signingKey.findFirstOrThrow({ where: { status: "active" } })).kid).not.toBe(keyBefore);
    // The marker covers the fence's own event.
    await (await import("@/lib/audit/chainer")).chainEverythingCommitted();
    expect((await fx.db.auditEvent.findUniqueOrThrow({ where: { id: fenced[0]!.id } })).seq).toBeLessThanOrEqual(fencedAt);

    // The second sweep finds the marker at the head: nothing more is fenced, and a grant made since stays.
    const since = await grant();
    await sweepAndCheckMarker();
    expect(await fx.db.auditEvent.count({ where: { action: "restore.fenced" } })).toBe(1);
    expect(await verify(since.token)).toMatchObject({ ok: true });
    await stopWorker();
  });
});

describe("the worker after npm run restore:fence", () => {
  it("finds nothing to do: the command moved the marker, so the worker fences nothing more", { timeout: 300_000 }, async () => {
    const live = new URL(fx.url).pathname.slice(1);
    const backup = `${live}_backup2`;
    const kept = await grant();
    await runWorker();
    await sweepAndCheckMarker();
    await stopWorker();
    await copyDatabase(live, backup);
    await engine.revokeGrant(alice, { requestId: kept.id, reason: "done early" });
    await runWorker();
    await sweepAndCheckMarker();
    await stopWorker();
    await copyDatabase(backup, live);
    await sql(new URL(fx.url).toString().replace(`/${live}`, "/postgres"), `DROP DATABASE "${backup}"`);
    const fencedBefore = await fx.db.auditEvent.count({ where: { action: "restore.fenced" } });

    const { execFile } = await import("node:child_process");
    const fenced = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        "node_modules/.bin/tsx",
        ["scripts/restore.ts", "--reason", "restored a snapshot"],
        {
          env: {
            PATH: process.env.PATH,
            DATABASE_URL: fx.url,
            LATCHKEY_ENCRYPTION_KEY: keyA,
            LATCHKEY_POLICY_FILE: process.env.LATCHKEY_POLICY_FILE,
            LATCHKEY_RESTORE_MARKER: marker,
          } as unknown as NodeJS.ProcessEnv,
          timeout: 120_000,
        },
        (error, _stdout, stderr) => resolve({ code: error ? 1 : 0, stderr }),
      ),
    );
    expect(fenced.code, fenced.stderr).toBe(0);
    expect(markerSeq()).toBe(await headSeq());

    await runWorker();
    await sweepAndCheckMarker();
    await sweepAndCheckMarker();
    await stopWorker();
    const after = await fx.db.auditEvent.findMany({ where: { action: "restore.fenced" }, orderBy: { id: "asc" } });
    expect(after).toHaveLength(fencedBefore + 1);
    expect(after.at(-1)).toMatchObject({ actorEmail: "npm run restore:fence" });
  });
});

describe("more published signing keys than key files", () => {
  it("the worker logs an error naming the keys left out; the files hold the four oldest, not the key now signing", { timeout: 180_000 }, async () => {
    const { publishedKeyPems, rotateSigningKey } = await import("@/lib/credentials/keys");
    const { KEY_FILE_SLOTS, keyFileName } = await import("@/lib/credentials/key-files");
    // A retired key stays published while a credential it signed lives: rotate at once and sign one under each key.
    while ((await publishedKeyPems()).length <= KEY_FILE_SLOTS) {
      await rotateSigningKey({ type: "system", email: "test" }, "fill the key files");
      await grant();
    }
    const published = await publishedKeyPems();
    const active = published.find((k) => k.status === "active")!.kid;

    await runWorker({ LATCHKEY_KEY_DIR: keyDir });
    await expect.poll(() => worker!.output(), { timeout: 30_000 }).toContain("more signing keys are published than the key directory has files for");
    const line = worker!
      .output()
      .split("\n")
      .find((l) => l.includes("more signing keys are published"))!;
    expect(JSON.parse(line)).toMatchObject({
      level: "error",
      left: published
        .slice(KEY_FILE_SLOTS)
        .map((k) => k.kid)
        .join(","),
    });
    const inFiles = Array.from(
      { length: KEY_FILE_SLOTS },
      (_, i) => readFileSync(path.join(keyDir, keyFileName(i + 1)), "utf8").match(/signing key (\S+)/)![1],
    );
    expect(inFiles).toEqual(published.slice(0, KEY_FILE_SLOTS).map((k) => k.kid));
    expect(inFiles).not.toContain(active);
    // Every sweep says so again, until keys retire.
    const before = worker!.output().split("more signing keys are published").length;
    await sweepNow(fx.url);
    expect(worker!.output().split("more signing keys are published").length).toBeGreaterThan(before);
    await stopWorker();
  });
});

describe("the worker's re-seal after an encryption-key change", () => {
  it(
    "re-seals everything under the new key at its sweep, audited as the worker; the next sweep finds nothing; the old key can then go",
    { timeout: 240_000 },
    async () => {
      const sealed = async () => {
        const keys = await fx.db.signingKey.findMany({ select: { privateKeySealed: true } });
        const creds = await fx.db.credential.findMany({ where: { sealedToken: { not: null } }, select: { sealedToken: true } });
        return new Set([...keys.map((k) => k.privateKeySealed), ...creds.map((c) => c.sealedToken!)].map((s) => s.split(".")[1]));
      };
      // An unrevealed credential, sealed under the old key.
      const pending = await engine.createRequest(alice, "temporary-access", validInput());
      await engine.decide(bob, { requestId: pending.id, decision: "approve", comment: "ok" });
      expect(await sealed()).toEqual(new Set([idOf(keyA)]));

      await runWorker({ LATCHKEY_ENCRYPTION_KEY: `${keyB},${keyA}` });
      await sweepNow(fx.url);
      expect(await sealed()).toEqual(new Set([idOf(keyB)]));
      const steps = await fx.db.auditEvent.findMany({ where: { action: "encryption_key.resealed" } });
      expect(steps.length).toBeGreaterThanOrEqual(1);
      for (const s of steps) expect(s).toMatchObject({ actorType: "system", chainKeyId: idOf(keyB), data: { keyId: idOf(keyB) } });

      await sweepNow(fx.url);
      expect(await fx.db.auditEvent.count({ where: { action: "encryption_key.resealed" } })).toBe(steps.length);
      expect(worker!.output()).not.toContain("could not re-seal");
      await stopWorker();

      // With nothing left under the old key, a worker holding only the new one starts.
      await runWorker({ LATCHKEY_ENCRYPTION_KEY: keyB });
      await sweepNow(fx.url);
      await stopWorker();
    },
  );
});
