import { execFile } from "node:child_process";
import { createDecipheriv, createHmac, randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * Changing LATCHKEY_ENCRYPTION_KEY, as an operator does it, against a real database: the
 * commands run as processes under the keys given to them; the data is made under the old key
 * by the engine in this process.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal;
let bob: Principal;
let oldKey: string;
const newKey = randomBytes(32).toString("base64");
const idOf = (b64: string) => `ek-${createHmac("sha256", Buffer.from(b64, "base64")).update("latchkey encryption key id").digest("hex").slice(0, 16)}`;
let unrevealed: string;
/** What instrumentation.ts does when the server starts. */
const WORKER =
  "import('./lib/jobs/worker.ts').then((m) => m.startWorker(process.env.DATABASE_URL)).then(() => { console.log('worker started'); process.exit(0); }, (e) => { console.error(e.message); process.exit(1); })";
const START = "import('./lib/startup-checks.ts').then((m) => m.checkEncryptionKeyAtStart()).then(() => console.log('started'))";

beforeAll(async () => {
  fx = await engineFixture();
  oldKey = process.env.LATCHKEY_ENCRYPTION_KEY!;
  engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  for (let i = 0; i < 3; i++) {
    const r = await engine.createRequest(alice, "temporary-access", validInput());
    await engine.decide(bob, { requestId: r.id, decision: "approve", comment: `grant ${i}` });
    if (i === 0) await engine.revealCredential(alice, r.id);
    else unrevealed = r.id;
  }
  // Events are linked into the chain after they commit (the worker's chainer; here, by hand).
  await (await import("@/lib/audit/chainer")).chainAuditEvents();
});
afterAll(() => fx?.close());

function run(args: string[], key: string | undefined, extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const only = {
    PATH: process.env.PATH,
    DATABASE_URL: fx.url,
    LATCHKEY_ENCRYPTION_KEY: key,
    LATCHKEY_KEY_PUBLISH_AHEAD: "0",
    LATCHKEY_POLICY_FILE: process.env.LATCHKEY_POLICY_FILE,
    ...extra,
  };
  return new Promise((resolve) => {
    execFile(
      "node_modules/.bin/tsx",
      args,
      { env: Object.fromEntries(Object.entries(only).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const sealedIds = async () => {
  const keys = await fx.db.signingKey.findMany({ select: { privateKeySealed: true } });
  const creds = await fx.db.credential.findMany({ where: { sealedToken: { not: null } }, select: { sealedToken: true } });
  return [...keys.map((k) => k.privateKeySealed), ...creds.map((c) => c.sealedToken!)].map((s) => s.split(".").slice(0, 2).join("."));
};

/**
 * Makes events 1..last look as an installation from before key ids and seals left them (one
 * hash over the content, under the old key, naming no key), and links the later ones after them
 * again, those not chained yet (the re-seal's, recorded by the CLI) under the new key, as a chainer holding it would.
 */
async function relinkAsBeforeKeyIds(client: pg.Client, last: bigint) {
  const { chainHash, linkHash } = await import("@/lib/audit/chain");
  const { EVENT_COLUMNS } = await import("@/lib/audit/event-check");
  const { db } = await import("@/lib/db");
  const keys = new Map([oldKey, newKey].map((k) => [idOf(k), { id: idOf(k), key: Buffer.from(k, "base64") }]));
  const events = await db.$queryRaw<import("@/lib/audit/event-check").EventRow[]>`SELECT ${EVENT_COLUMNS} FROM "AuditEvent" ORDER BY seq NULLS LAST, id`;
  let prev = "";
  let seq = 0n;
  for (const e of events) {
    seq += 1n;
    if (e.seq === null) {
      const hash = linkHash({ prevHash: prev, seq, id: e.id, seal: e.seal!, sealKeyId: e.sealKeyId! }, keys.get(idOf(newKey)));
      await client.query(`UPDATE "AuditEvent" SET seq = $2, "prevHash" = $3, hash = $4, "chainKeyId" = $5 WHERE id = $1`, [
        e.id,
        seq,
        prev,
        hash,
        idOf(newKey),
      ]);
      prev = hash;
    } else if (e.seq <= last) {
      const hash = chainHash(prev, e, keys.get(idOf(oldKey)));
      await client.query(`UPDATE "AuditEvent" SET "chainKeyId" = NULL, seal = NULL, "sealKeyId" = NULL, "prevHash" = $2, hash = $3 WHERE id = $1`, [
        e.id,
        prev,
        hash,
      ]);
      prev = hash;
    } else {
      const hash = linkHash({ prevHash: prev, seq: e.seq!, id: e.id, seal: e.seal!, sealKeyId: e.sealKeyId! }, keys.get(e.chainKeyId!));
      await client.query(`UPDATE "AuditEvent" SET "prevHash" = $2, hash = $3 WHERE id = $1`, [e.id, prev, hash]);
      prev = hash;
    }
  }
  await client.query(`UPDATE "AuditChainHead" SET "keyIdsFromSeq" = $1, "sealsFromSeq" = $1, "lastSeq" = $2, "lastHash" = $3`, [last + 1n, seq, prev]);
}

describe("rotating LATCHKEY_ENCRYPTION_KEY", () => {
  it("seals and chains under key ids, so every value names the key it needs", async () => {
    const ids = await sealedIds();
    expect(ids.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ids)).toEqual(new Set([`v2.${idOf(oldKey)}`]));
    const chained = await fx.db.auditEvent.findMany({ where: { hash: { not: null } }, select: { chainKeyId: true, sealKeyId: true } });
    expect(new Set(chained.map((e) => e.chainKeyId))).toEqual(new Set([idOf(oldKey)]));
    expect(new Set(chained.map((e) => e.sealKeyId))).toEqual(new Set([idOf(oldKey)]));
  });

  it(
    "a new key alone is refused by keys:rotate and at start-up, naming the variable and the missing key; nothing is written",
    { timeout: 240_000 },
    async () => {
      const events = await fx.db.auditEvent.count();
      const keys = await fx.db.signingKey.count();
      const rotate = await run(["scripts/keys.ts", "rotate", "--now"], newKey);
      expect(rotate.code).toBe(1);
      expect(rotate.stderr).toContain(
        `Refusing to write sealed data: LATCHKEY_ENCRYPTION_KEY (holding ${idOf(newKey)}) cannot open what the database holds: it was sealed under ${idOf(oldKey)}`,
      );
      expect(rotate.stderr).toMatch(/signing keys, 2 credentials, the audit chain/);
      expect(rotate.stderr).toContain("LATCHKEY_ENCRYPTION_KEY_PREVIOUS");
      const pem = await run(["scripts/keys.ts", "pem"], newKey);
      expect(pem.code).toBe(1);
      expect(pem.stderr).toContain(`sealed under ${idOf(oldKey)}`);
      const reseal = await run(["scripts/keys.ts", "reseal"], newKey);
      expect(reseal.code).toBe(1);
      expect(reseal.stderr).toContain(`sealed under ${idOf(oldKey)}`);
      const issuer = await run(["scripts/keys.ts", "issuer", "https://moved.example.com"], newKey);
      expect(issuer.code).toBe(1);
      expect(issuer.stderr).toContain(`sealed under ${idOf(oldKey)}`);
      const worker = await run(["--conditions=react-server", "--eval", WORKER], newKey, {
        NEXTAUTH_SECRET: "x".repeat(32),
        OIDC_ISSUER: "http://unused.invalid",
        OIDC_CLIENT_ID: "unused",
        OIDC_CLIENT_SECRET: "unused",
      });
      expect(worker.code, worker.stdout).toBe(1);
      expect(worker.stderr).toContain(`The worker cannot start: LATCHKEY_ENCRYPTION_KEY (holding ${idOf(newKey)}) cannot open what the database holds`);
      expect(worker.stdout).not.toContain("worker started");
      expect(await fx.db.auditEvent.count()).toBe(events);
      expect(await fx.db.signingKey.count()).toBe(keys);

      const start = await run(["--conditions=react-server", "--eval", START], newKey, {
        NEXTAUTH_SECRET: "x".repeat(32),
        OIDC_ISSUER: "http://unused.invalid",
        OIDC_CLIENT_ID: "unused",
        OIDC_CLIENT_SECRET: "unused",
      });
      expect(start.code, start.stdout).toBe(1);
      expect(start.stderr).toContain(`[latchkey] cannot start: LATCHKEY_ENCRYPTION_KEY (holding ${idOf(newKey)}) cannot open what the database holds`);
      expect(start.stdout).not.toContain("started");
      const started = await run(["--conditions=react-server", "--eval", START], oldKey, {
        NEXTAUTH_SECRET: "x".repeat(32),
        OIDC_ISSUER: "http://unused.invalid",
        OIDC_CLIENT_ID: "unused",
        OIDC_CLIENT_SECRET: "unused",
      });
      expect(started.code, started.stderr).toBe(0);
      expect(started.stdout).toContain("started");
    },
  );

  it(
    "audit:verify under a key that is not the chain's says it cannot check, not that an event was altered, and records that",
    { timeout: 120_000 },
    async () => {
      const wrong = await run(["scripts/audit.ts"], newKey);
      expect(wrong.code).toBe(3);
      expect(wrong.stderr).toContain("NOT CHECKED in full");
      expect(wrong.stderr).toContain(`chained under ${idOf(oldKey)}`);
      expect(wrong.stderr).toContain("not by itself evidence of tampering");
      expect(wrong.stderr).toContain("if no key you ever held opens them, treat them as altered");
      expect(wrong.stderr).not.toMatch(/was altered|: it was inserted|BROKEN/);
      const saved = await fx.db.auditVerification.findFirstOrThrow({ orderBy: { startedAt: "desc" } });
      expect(saved).toMatchObject({ ok: false, outcome: "unverifiable", firstBadSeq: null, missingKeyIds: idOf(oldKey) });
      expect(saved.uncheckedEvents).toBeGreaterThan(5);
      const { metricsText } = await import("@/lib/observability/cluster-metrics");
      const text = await metricsText();
      // Not checkable is neither intact nor altered: the 0/1 gauge is absent, so an alert on 0 does not page for tampering.
      expect(text).toMatch(/^latchkey_audit_chain_verified 1$/m);
      expect(text).not.toMatch(/^latchkey_audit_chain_intact /m);
      expect(text).toMatch(new RegExp(`^latchkey_audit_chain_unverifiable_events ${saved.uncheckedEvents}$`, "m"));
    },
  );

  it(
    "keys:reseal under the new key with the old one kept moves everything, audited and resumably; the chain verifies across both keys",
    { timeout: 300_000 },
    async () => {
      const ring = `${newKey},${oldKey}`;
      const reseal = await run(["scripts/keys.ts", "reseal", "--batch", "1"], ring);
      expect(reseal.code, reseal.stderr).toBe(0);
      expect(reseal.stdout).toContain(`Everything sealed is under encryption key ${idOf(newKey)}`);
      expect(new Set(await sealedIds())).toEqual(new Set([`v2.${idOf(newKey)}`]));
      // Batches of one value of each kind: one signing key and two credentials take two audited steps, each under the new key.
      const steps = await fx.db.auditEvent.findMany({ where: { action: "encryption_key.resealed" } });
      expect(steps).toHaveLength(2);
      // Each sealed as it was written under the new key (its link comes from whichever chainer runs, under that one's key).
      for (const s of steps) expect(s).toMatchObject({ actorEmail: "npm run keys:reseal", sealKeyId: idOf(newKey), data: { keyId: idOf(newKey) } });
      // Nothing left: a second run re-seals nothing and records nothing.
      const again = await run(["scripts/keys.ts", "reseal"], ring);
      expect(again.stdout).toContain("(0 values re-sealed now)");
      expect(await fx.db.auditEvent.count({ where: { action: "encryption_key.resealed" } })).toBe(steps.length);

      const rotate = await run(["scripts/keys.ts", "rotate", "--now", "--reason", "new encryption key"], newKey, { LATCHKEY_ENCRYPTION_KEY_PREVIOUS: oldKey });
      expect(rotate.code, rotate.stderr).toBe(0);
      const verified = await run(["scripts/audit.ts"], ring);
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.stdout).toContain("Audit chain intact");
      // Without the old key, the events chained under it cannot be checked, and are not called altered.
      const without = await run(["scripts/audit.ts"], newKey);
      expect(without.code).toBe(3);
      expect(without.stderr).toContain(`chained under ${idOf(oldKey)}`);
    },
  );

  it("the credential sealed under the old key is revealed under the new one after the re-seal", async () => {
    // This process still holds only the old key: it no longer opens the re-sealed token and says which key it needs.
    await expect(engine.revealCredential(alice, unrevealed)).rejects.toThrow(
      `sealed under encryption key ${idOf(newKey)}, which LATCHKEY_ENCRYPTION_KEY does not hold`,
    );
    const row = await fx.db.credential.findFirstOrThrow({ where: { requestId: unrevealed } });
    const [, , iv, tag, body] = row.sealedToken!.split(".");
    const decipher = createDecipheriv("aes-256-gcm", Buffer.from(newKey, "base64"), Buffer.from(iv!, "base64url"));
    decipher.setAAD(Buffer.from(`credential:${row.id}`));
    decipher.setAuthTag(Buffer.from(tag!, "base64url"));
    const token = Buffer.concat([decipher.update(Buffer.from(body!, "base64url")), decipher.final()]).toString("utf8");
    expect(token.split(".")).toHaveLength(3);
  });

  it("an event altered under a key the ring holds is still reported as altered", { timeout: 120_000 }, async () => {
    const client = new pg.Client({ connectionString: fx.url });
    await client.connect();
    try {
      await client.query("SET session_replication_role = replica");
      const { rows } = await client.query(`SELECT seq FROM "AuditEvent" WHERE action = 'request.created' ORDER BY seq LIMIT 1`);
      await client.query(`UPDATE "AuditEvent" SET "actorEmail" = 'mallory@example.com' WHERE seq = $1`, [rows[0].seq]);
      const broken = await run(["scripts/audit.ts"], `${newKey},${oldKey}`);
      expect(broken.code).toBe(1);
      expect(broken.stderr).toContain(`Audit chain BROKEN at event #${rows[0].seq}`);
      expect(await fx.db.auditVerification.findFirstOrThrow({ orderBy: { startedAt: "desc" } })).toMatchObject({
        ok: false,
        outcome: "altered",
        firstBadSeq: BigInt(rows[0].seq),
      });
    } finally {
      await client.end();
    }
  });

  it(
    "events chained before keys had ids verify under whichever key of the ring made them, and under another key are not checkable rather than altered",
    { timeout: 180_000 },
    async () => {
      const client = new pg.Client({ connectionString: fx.url });
      await client.connect();
      try {
        await client.query("SET session_replication_role = replica");
        // Put back the event altered above, then make the first events look as an installation from before key ids left them.
        await client.query(`UPDATE "AuditEvent" SET "actorEmail" = 'alice@example.com' WHERE "actorEmail" = 'mallory@example.com'`);
        const { rows } = await client.query(`SELECT max(seq) AS last FROM "AuditEvent" WHERE "chainKeyId" = $1`, [idOf(oldKey)]);
        await relinkAsBeforeKeyIds(client, BigInt(rows[0].last));
        const ring = await run(["scripts/audit.ts"], `${newKey},${oldKey}`);
        expect(ring.code, ring.stderr).toBe(0);
        const without = await run(["scripts/audit.ts"], newKey);
        expect(without.code).toBe(3);
        expect(without.stderr).toContain("chained under the key used before keys had ids");
        // Under the right key, an edit to one of them is still an alteration.
        const { rows: original } = await client.query(`SELECT "actorEmail" FROM "AuditEvent" WHERE seq = 5`);
        await client.query(`UPDATE "AuditEvent" SET "actorEmail" = 'mallory@example.com' WHERE seq = 5`);
        const altered = await run(["scripts/audit.ts"], `${newKey},${oldKey}`);
        expect(altered.code).toBe(1);
        expect(altered.stderr).toContain("Audit chain BROKEN at event #5");
        // And an event past the point where events name their key that names none was inserted or altered.
        await client.query(`UPDATE "AuditEvent" SET "actorEmail" = $1 WHERE seq = 5`, [original[0].actorEmail]);
        await client.query(`UPDATE "AuditEvent" SET "chainKeyId" = NULL WHERE seq = $1`, [Number(rows[0].last) + 1]);
        const stripped = await run(["scripts/audit.ts"], `${newKey},${oldKey}`);
        expect(stripped.code).toBe(1);
        expect(stripped.stderr).toContain(`names no key, though every event from ${Number(rows[0].last) + 1} on does`);
      } finally {
        await client.end();
      }
    },
  );
});
