import pg from "pg";
import { vi } from "vitest";

/**
 * The statements `work` sends on the connection of the transaction it opens (the first to send
 * BEGIN), as their texts: another connection's, such as the chainer's wake-up after a commit
 * through the pool, are not counted. Tests of the request lifecycle's statement count use it.
 */
export async function transactionStatements<T>(work: () => Promise<T>): Promise<{ value: T; texts: string[] }> {
  const spy = vi.spyOn(pg.Client.prototype, "query");
  try {
    const value = await work();
    const texts = spy.mock.calls.map(([q]) => (typeof q === "string" ? q : (q as { text: string }).text));
    const begun = texts.indexOf("BEGIN");
    return { value, texts: texts.filter((_, i) => spy.mock.contexts[i] === spy.mock.contexts[begun]) };
  } finally {
    spy.mockRestore();
  }
}

/**
 * The statements `work` sends on any connection, as their texts, leaving out the notifications
 * that run in the background may send meanwhile (the change feed's heartbeat every second, the
 * chainer's wake-up after a commit, both `SELECT pg_notify(...)`): a statement count that took
 * them in failed now and then, when the heartbeat fell inside `work`.
 */
export async function statementsOf<T>(work: () => Promise<T>): Promise<{ value: T; texts: string[] }> {
  const spy = vi.spyOn(pg.Client.prototype, "query");
  try {
    const value = await work();
    const texts = spy.mock.calls.map(([q]) => (typeof q === "string" ? q : (q as { text: string }).text));
    return { value, texts: texts.filter((text) => !text.startsWith("SELECT pg_notify(")) };
  } finally {
    spy.mockRestore();
  }
}
