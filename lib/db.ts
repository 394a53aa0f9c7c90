import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "@prisma/client";
import pg from "pg";
import { logger } from "./log";
import { closeUnit, finishUnit, openUnit } from "./db/after-commit";
import { env } from "./env";
import { closeChanges } from "./db/changes";

/** The one Prisma client of the process. */
const globalForPrisma = globalThis as unknown as { latchkeyPrisma?: PrismaClient };

/**
 * The connection pool, made here so that a connection the server drops (restart, failover,
 * a terminated backend) leaves the pool at once, even when it dies in the middle of a
 * transaction whose end is never reached: otherwise each outage would keep a slot forever.
 */
function createPool(connectionString: string): pg.Pool {
  const pool = new pg.Pool({ connectionString, max: 20 });
  pool.on("error", (error) => logger("db").warn("an idle connection was lost", { error: error.message }));
  pool.on("acquire", (client) => {
    // pg-pool assigns client.release right after this event; keep it, and hand out a wrapper
    // that releases once, also when the connection dies while the client is checked out.
    let inner: ((error?: Error | boolean) => void) | undefined;
    let released = false;
    const release = (error?: Error | boolean) => {
      if (released) return;
      released = true;
      client.removeListener("error", onError);
      // Later calls (Prisma ending a transaction on a connection that already died) do nothing.
      Object.defineProperty(client, "release", { configurable: true, writable: true, value: () => undefined });
      inner?.call(client, error);
    };
    const onError = (error: Error) => {
      logger("db").warn("a connection in use was lost", { error: error.message });
      release(error);
    };
    client.on("error", onError);
    Object.defineProperty(client, "release", {
      configurable: true,
      get: () => release,
      set: (fn: (error?: Error | boolean) => void) => {
        inner = fn;
      },
    });
  });
  return pool;
}

export function createPrismaClient(connectionString: string): PrismaClient {
  // The pool is ours, but Prisma should close it on $disconnect all the same.
  return new PrismaClient({ adapter: new PrismaPg(createPool(connectionString), { disposeExternalPool: true }) });
}

/**
 * An interactive transaction is a unit of work (lib/db/after-commit.ts): what its code asks
 * to run before the commit (the audit events it recorded, written together) runs inside it
 * once its code is done; what it asks to run once it commits (caches forgetting the grants it
 * ended and the tokens it revoked, the audit chainer's wake-up) runs after the commit, and
 * never for a transaction rolled back.
 */
function unitOfWork(client: PrismaClient) {
  return async (arg: unknown, options?: unknown) => {
    if (typeof arg !== "function") return (client.$transaction as (a: unknown, o?: unknown) => unknown)(arg, options);
    let committed: Array<() => void> = [];
    const result = await client.$transaction(async (tx) => {
      openUnit(tx);
      try {
        const value = await (arg as (tx: Prisma.TransactionClient) => Promise<unknown>)(tx);
        await finishUnit(tx);
        return value;
      } finally {
        committed = closeUnit(tx);
      }
    }, options as never);
    for (const run of committed) {
      try {
        run();
      } catch (error) {
        // The change is committed: what runs after it must not make it look failed.
        logger("db").error("a step after a commit failed", { error: (error as Error).message });
      }
    }
    return result;
  };
}

export const db: PrismaClient = new Proxy({} as PrismaClient, {
  get(_target, prop) {
    globalForPrisma.latchkeyPrisma ??= createPrismaClient(env().DATABASE_URL);
    if (prop === "$transaction") return unitOfWork(globalForPrisma.latchkeyPrisma);
    const value = Reflect.get(globalForPrisma.latchkeyPrisma, prop);
    return typeof value === "function" ? value.bind(globalForPrisma.latchkeyPrisma) : value;
  },
});

export type Tx = Prisma.TransactionClient;

export async function disconnectDb(): Promise<void> {
  await closeChanges();
  await globalForPrisma.latchkeyPrisma?.$disconnect();
  globalForPrisma.latchkeyPrisma = undefined;
}
