import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "@prisma/client";
import { env } from "./env";

/** The one Prisma client of the process. */
const globalForPrisma = globalThis as unknown as { latchkeyPrisma?: PrismaClient };

export function createPrismaClient(connectionString: string): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString, max: 20 }) });
}

export const db: PrismaClient = new Proxy({} as PrismaClient, {
  get(_target, prop) {
    globalForPrisma.latchkeyPrisma ??= createPrismaClient(env().DATABASE_URL);
    const value = Reflect.get(globalForPrisma.latchkeyPrisma, prop);
    return typeof value === "function" ? value.bind(globalForPrisma.latchkeyPrisma) : value;
  },
});

export type Tx = Prisma.TransactionClient;

export async function disconnectDb(): Promise<void> {
  await globalForPrisma.latchkeyPrisma?.$disconnect();
  globalForPrisma.latchkeyPrisma = undefined;
}
