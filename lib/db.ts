import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "@prisma/client";
import { flushAuditBuffer, openAuditBuffer } from "./audit/pending";
import { env } from "./env";

/** The one Prisma client of the process. */
const globalForPrisma = globalThis as unknown as { latchkeyPrisma?: PrismaClient };

export function createPrismaClient(connectionString: string): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString, max: 20 }) });
}

/**
 * Interactive transactions collect their audit events and append them to the chain at the
 * end, inside the transaction (lib/audit/pending.ts).
 */
function auditedTransaction(client: PrismaClient) {
  return (arg: unknown, options?: unknown) => {
    if (typeof arg !== "function") return (client.$transaction as (a: unknown, o?: unknown) => unknown)(arg, options);
    return client.$transaction(async (tx) => {
      openAuditBuffer(tx);
      const result = await (arg as (tx: Prisma.TransactionClient) => Promise<unknown>)(tx);
      await flushAuditBuffer(tx);
      return result;
    }, options as never);
  };
}

export const db: PrismaClient = new Proxy({} as PrismaClient, {
  get(_target, prop) {
    globalForPrisma.latchkeyPrisma ??= createPrismaClient(env().DATABASE_URL);
    if (prop === "$transaction") return auditedTransaction(globalForPrisma.latchkeyPrisma);
    const value = Reflect.get(globalForPrisma.latchkeyPrisma, prop);
    return typeof value === "function" ? value.bind(globalForPrisma.latchkeyPrisma) : value;
  },
});

export type Tx = Prisma.TransactionClient;

export async function disconnectDb(): Promise<void> {
  await globalForPrisma.latchkeyPrisma?.$disconnect();
  globalForPrisma.latchkeyPrisma = undefined;
}
