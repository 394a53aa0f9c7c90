import type { PrismaClient } from "@prisma/client";
import { expect } from "vitest";

/**
 * Holds `count` transactions of `db` open at once, each on a connection of its own, until
 * `release` is called; returns once all of them have begun (failing the test if they do not
 * within five seconds), with the backends they run on. For tests of what happens when a
 * process's pool is all in use, or all but a few connections of it.
 */
export async function holdTransactions(db: PrismaClient, count: number) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const backends = new Set<number>();
  const holders = Array.from({ length: count }, () =>
    db.$transaction(
      async (tx) => {
        const [row] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
        backends.add(row!.pid);
        await released;
      },
      { timeout: 60_000 },
    ),
  );
  // A holder refused a connection fails the assertion below, not as an unhandled rejection first (callers still see it).
  for (const holder of holders) holder.catch(() => undefined);
  for (let i = 0; i < 250 && backends.size < count; i++) await new Promise((r) => setTimeout(r, 20));
  if (backends.size < count) {
    release();
    await Promise.allSettled(holders);
  }
  expect(backends.size, "transactions holding a connection of their own").toBe(count);
  return { release, holders, backends };
}
