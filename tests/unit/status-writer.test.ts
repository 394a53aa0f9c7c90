import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

/**
 * A request's status is written by lib/approvals/transition.ts alone. The lint rule that
 * keeps it so (eslint.config.mjs, STATUS_WRITES) is run here on writes it must refuse and
 * reads and other writes it must let through, so a rule that stopped matching fails a test.
 */
const WRITES = [
  `await tx.accessRequest.update({ where: { id }, data: { status: "failed" } });`,
  `await db.accessRequest.updateMany({ where: { id: { in: ids } }, data: { endedAt: new Date(), status: "revoked" } });`,
  `await tx.accessRequest.create({ data: { ...row, status: "pending" } });`,
  `await tx.accessRequest.upsert({ where: { id }, create: row, update: { status: "cancelled" } });`,
  'await tx.$executeRaw`UPDATE "AccessRequest" SET "endedAt" = now(), status = \'expired\' WHERE id = ${id}`;',
  `await tx.$executeRawUnsafe('UPDATE "AccessRequest" SET status = $1 WHERE id = $2', "failed", id);`,
  "await tx.$executeRaw`INSERT INTO \"AccessRequest\" (id, status) VALUES (${id}, 'active')`;",
];

const ALLOWED = [
  `await tx.accessRequest.update({ where: { id }, data: { undoPending: true } });`,
  `await tx.accessRequest.updateMany({ where: { id, status: "active" }, data: { externalState: "running" } });`,
  `await tx.accessRequest.findMany({ where: { status: "active" } });`,
  'await tx.$queryRaw`SELECT status FROM "AccessRequest" WHERE id = ${id} FOR UPDATE`;',
  'await tx.$queryRaw`UPDATE "AccessRequest" r SET "sealedSecret" = NULL WHERE r.id = ${id}`;',
  `await tx.serviceIdentityChange.update({ where: { id }, data: { status: "approved" } });`,
];

const wrap = (line: string) => `export async function f(tx: any, db: any, id: string, ids: string[], row: any) {\n  ${line}\n}\n`;

async function statusRefusals(line: string, filePath: string): Promise<string[]> {
  const [result] = await new ESLint().lintText(wrap(line), { filePath });
  return result!.messages.filter((m) => m.ruleId === "no-restricted-syntax").map((m) => m.message);
}

describe("one writer of a request's status", () => {
  for (const line of WRITES) {
    it(`refuses outside the writer: ${line}`, async () => {
      for (const file of ["lib/identity/directory.ts", "lib/approvals/grants.ts", "app/api/v1/requests/route.ts", "components/requests/x.tsx"]) {
        expect(await statusRefusals(line, file), file).toEqual([expect.stringContaining("lib/approvals/transition.ts")]);
      }
    });
    it(`lets the writer do it: ${line}`, async () => {
      expect(await statusRefusals(line, "lib/approvals/transition.ts")).toEqual([]);
    });
  }
  for (const line of ALLOWED) {
    it(`lets through what does not write a request's status: ${line}`, async () => {
      expect(await statusRefusals(line, "lib/approvals/grants.ts")).toEqual([]);
    });
  }
});
