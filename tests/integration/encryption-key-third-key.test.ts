import { execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";

/**
 * The second change of LATCHKEY_ENCRYPTION_KEY (README "Changing the encryption key"): key A,
 * then B with A kept, then C with B and A kept, with something sealed and chained under each.
 * Each step runs as an operator runs it, in processes holding that step's ring; a re-seal
 * moves everything to C, after which A and then B can be dropped and everything sealed still
 * opens. Its own database: encryption-key-rotation.test.ts's later tests build on two keys.
 */
let fx: Awaited<ReturnType<typeof engineFixture>>;
const [keyA, keyB, keyC] = [0, 1, 2].map(() => randomBytes(32).toString("base64")) as [string, string, string];
const idOf = (b64: string) => `ek-${createHmac("sha256", Buffer.from(b64, "base64")).update("latchkey encryption key id").digest("hex").slice(0, 16)}`;
const UNUSED = {
  NEXTAUTH_URL: "http://localhost:3999",
  NEXTAUTH_SECRET: "x".repeat(32),
  OIDC_ISSUER: "http://unused.invalid",
  OIDC_CLIENT_ID: "u",
  OIDC_CLIENT_SECRET: "u",
};
/** Alice asks, Bob approves, in a process of its own: the credential is sealed under that process's current key. */
const GRANT = `Promise.all([import('./lib/approvals/engine.ts'), import('./lib/db.ts')]).then(async ([engine, { db }]) => {
  const who = async (email) => { const u = await db.user.findUniqueOrThrow({ where: { email } }); return { id: u.id, email, groups: u.groups, roles: u.roles }; };
  const r = await engine.createRequest(await who('alice@example.com'), 'temporary-access', JSON.parse(process.env.INPUT));
  await engine.decide(await who('bob@example.com'), { requestId: r.id, decision: 'approve', comment: 'ok' });
  console.log('granted ' + r.id); process.exit(0);
}, (e) => { console.error(e.message); process.exit(1); })`;
/** Alice reveals her credentials, in a process of its own. */
const REVEAL = `Promise.all([import('./lib/approvals/engine.ts'), import('./lib/db.ts')]).then(async ([engine, { db }]) => {
  const u = await db.user.findUniqueOrThrow({ where: { email: 'alice@example.com' } });
  for (const id of process.env.IDS.split(',')) console.log('revealed ' + id + ' ' + (await engine.revealCredential({ id: u.id, email: u.email, groups: u.groups, roles: u.roles }, id)).token.split('.').length);
  process.exit(0);
}, (e) => { console.error(e.message); process.exit(1); })`;
const START = "import('./lib/startup-checks.ts').then((m) => m.checkEncryptionKeyAtStart()).then(() => console.log('started'))";

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_ENCRYPTION_KEY: keyA });
  await fx.user("alice@example.com", ["engineering"]);
  await fx.user("bob@example.com", ["engineering-leads"]);
});
afterAll(() => fx?.close());

function run(args: string[], ring: Record<string, string>, extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const only = {
    PATH: process.env.PATH,
    DATABASE_URL: fx.url,
    LATCHKEY_KEY_PUBLISH_AHEAD: "0",
    LATCHKEY_POLICY_FILE: process.env.LATCHKEY_POLICY_FILE,
    ...ring,
    ...extra,
  };
  return new Promise((resolve) => {
    execFile("node_modules/.bin/tsx", args, { env: only as unknown as NodeJS.ProcessEnv, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
const evaluate = (code: string, ring: Record<string, string>, extra: Record<string, string> = {}) =>
  run(["--conditions=react-server", "--eval", code], ring, { ...UNUSED, ...extra });

/** Links what is committed into the chain, as the worker's chainer does, in a process holding `ring`. */
const CHAIN = `import('./lib/audit/chainer.ts').then(async ({ chainAuditEvents }) => { console.log('chained ' + (await chainAuditEvents())); process.exit(0); }, (e) => { console.error(e.message); process.exit(1); })`;

/** A grant made (its events sealed) and chained by processes holding `ring`. */
async function grantUnder(ring: Record<string, string>): Promise<string> {
  const granted = await evaluate(GRANT, ring, { INPUT: JSON.stringify(validInput()) });
  expect(granted.code, granted.stderr).toBe(0);
  const chained = await evaluate(CHAIN, ring);
  expect(chained.code, chained.stderr).toBe(0);
  return granted.stdout.match(/granted (\S+)/)![1]!;
}
async function rotateUnder(ring: Record<string, string>) {
  const rotated = await run(["scripts/keys.ts", "rotate", "--now", "--reason", "new encryption key"], ring);
  expect(rotated.code, rotated.stderr).toBe(0);
}
const sealedUnder = async () => {
  const keys = await fx.db.signingKey.findMany({ select: { privateKeySealed: true } });
  const creds = await fx.db.credential.findMany({ where: { sealedToken: { not: null } }, select: { sealedToken: true } });
  return new Set([...keys.map((k) => k.privateKeySealed), ...creds.map((c) => c.sealedToken!)].map((s) => s.split(".")[1]));
};
const eventKeys = async () => {
  const events = await fx.db.auditEvent.findMany({ select: { sealKeyId: true, chainKeyId: true } });
  return { sealed: new Set(events.map((e) => e.sealKeyId)), chained: new Set(events.map((e) => e.chainKeyId)) };
};

const A = { LATCHKEY_ENCRYPTION_KEY: keyA };
const BA = { LATCHKEY_ENCRYPTION_KEY: `${keyB},${keyA}` };
const CBA = { LATCHKEY_ENCRYPTION_KEY: keyC, LATCHKEY_ENCRYPTION_KEY_PREVIOUS: `${keyB},${keyA}` };
const CB = { LATCHKEY_ENCRYPTION_KEY: `${keyC},${keyB}` };
const C = { LATCHKEY_ENCRYPTION_KEY: keyC };

describe("a second change of the encryption key (A, then B, then C)", () => {
  let underA: string, underB: string, underC: string;

  it("seals and chains under each key in turn, and the chain verifies across all three", { timeout: 300_000 }, async () => {
    underA = await grantUnder(A);
    await rotateUnder(BA);
    underB = await grantUnder(BA);
    await rotateUnder(CBA);
    underC = await grantUnder(CBA);
    expect(await sealedUnder()).toEqual(new Set([idOf(keyA), idOf(keyB), idOf(keyC)]));
    expect(await eventKeys()).toEqual({ sealed: new Set([idOf(keyA), idOf(keyB), idOf(keyC)]), chained: new Set([idOf(keyA), idOf(keyB), idOf(keyC)]) });
    const verified = await run(["scripts/audit.ts"], CBA);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain("Audit chain intact");
    // Without A, B's ring cannot start over data C sealed, and a ring without the first key is refused by the commands.
    const withoutA = await run(["scripts/keys.ts", "pem"], CB);
    expect(withoutA.code).toBe(1);
    expect(withoutA.stderr).toContain(`sealed under ${idOf(keyA)}`);
    expect(withoutA.stderr).toContain("LATCHKEY_ENCRYPTION_KEY");
  });

  it("keys:reseal moves what A and B sealed to C; then A can be dropped, and then B, and everything still opens", { timeout: 300_000 }, async () => {
    const reseal = await run(["scripts/keys.ts", "reseal"], CBA);
    expect(reseal.code, reseal.stderr).toBe(0);
    expect(reseal.stdout).toContain(`Everything sealed is under encryption key ${idOf(keyC)}`);
    expect(await sealedUnder()).toEqual(new Set([idOf(keyC)]));

    // A dropped: the portal starts, the keys print, and credentials sealed under A and under B are revealed.
    const started = await evaluate(START, CB);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toContain("started");
    const pem = await run(["scripts/keys.ts", "pem"], CB);
    expect(pem.code, pem.stderr).toBe(0);
    expect(pem.stdout).toContain("BEGIN PUBLIC KEY");
    const revealed = await evaluate(REVEAL, CB, { IDS: `${underA},${underB}` });
    expect(revealed.code, revealed.stderr).toBe(0);
    expect(revealed.stdout).toContain(`revealed ${underA} 3`);
    expect(revealed.stdout).toContain(`revealed ${underB} 3`);
    // The chain's events under A are not checkable without it, and are not called altered.
    const verifyCB = await run(["scripts/audit.ts"], CB);
    expect(verifyCB.code).toBe(3);
    expect(verifyCB.stderr).toContain(`they were chained under ${idOf(keyA)}.`);
    expect(verifyCB.stderr).not.toMatch(/was altered|BROKEN/);

    // B dropped too: C alone starts, signs and reveals.
    const alone = await evaluate(START, C);
    expect(alone.code, alone.stderr).toBe(0);
    await rotateUnder(C);
    const lastGrant = await grantUnder(C);
    const revealedC = await evaluate(REVEAL, C, { IDS: `${underC},${lastGrant}` });
    expect(revealedC.code, revealedC.stderr).toBe(0);
    expect(revealedC.stdout).toContain(`revealed ${underC} 3`);
    expect(revealedC.stdout).toContain(`revealed ${lastGrant} 3`);
    const verifyC = await run(["scripts/audit.ts"], C);
    expect(verifyC.code).toBe(3);
    const missing = verifyC.stderr.match(/they were chained under ([^.]+)\./)![1]!.split(/,\s*/);
    expect(new Set(missing)).toEqual(new Set([idOf(keyA), idOf(keyB)]));
  });
});
