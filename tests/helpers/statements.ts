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
 * The statements `work` sends on any connection, as their texts, leaving out the two
 * notifications that run in the background may send meanwhile: the change feed's heartbeat
 * every second (on channel latchkey_changes, lib/db/changes.ts) and the chainer's wake-up after
 * a commit (lib/audit/chain-wake.ts). A statement count that took them in failed now and then,
 * when one fell inside `work`. Any other notification (a job's wake-up) is counted.
 */
export async function statementsOf<T>(work: () => Promise<T>): Promise<{ value: T; texts: string[] }> {
  const spy = vi.spyOn(pg.Client.prototype, "query");
  try {
    const value = await work();
    const sent = spy.mock.calls.map(([q, v]) =>
      typeof q === "string"
        ? { text: q, values: v as unknown[] | undefined }
        : { text: (q as { text: string }).text, values: (q as { values?: unknown[] }).values },
    );
    const background = ({ text, values }: { text: string; values?: unknown[] }) =>
      text === "SELECT pg_notify($1, $2)" && (values?.[0] === "latchkey_changes" || (values?.[0] === "latchkey_jobs" && values[1] === "audit-chain"));
    return { value, texts: sent.filter((statement) => !background(statement)).map((statement) => statement.text) };
  } finally {
    spy.mockRestore();
  }
}
