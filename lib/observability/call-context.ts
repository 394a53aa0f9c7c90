import { AsyncLocalStorage } from "node:async_hooks";
import type { AuditContext } from "../audit/context";
import type { TransactionConnection } from "../db";

/**
 * What Latchkey keeps for the call being served, across its awaits: the HTTP request's id
 * (lib/observability/request-context.ts), where its audit events come from (lib/audit/context.ts),
 * and the transaction its code runs in (lib/db.ts). One AsyncLocalStorage holds them all, kept
 * on globalThis, because Next.js may load a module more than once in a process (each bundle its
 * own copy) and every copy must see the same call.
 *
 * One store rather than one per concern because each enabled store costs every promise the
 * process makes: on Node.js 20, async_hooks' init hook copies each store's value onto each new
 * promise. The web server had eight enabled stores, five of them Latchkey's (lib/db.ts's, bundled
 * twice, was two), and that copying was about 3% of its busy time under bench:approvals' load
 * (a CPU profile); Next.js's own three remain.
 */
export interface CallContext {
  httpRequestId?: string;
  audit?: AuditContext;
  /** Set while a unit of work's code runs (db.$transaction). */
  inTransaction?: true;
  /** Set while Prisma opens its part of a transaction db.$transaction has begun: that transaction's connection. */
  bound?: TransactionConnection;
}

const globalForContext = globalThis as unknown as { latchkeyCallContext?: AsyncLocalStorage<CallContext> };
const storage = (globalForContext.latchkeyCallContext ??= new AsyncLocalStorage<CallContext>());

/** Runs `run` with `key` set to `value`, and the rest of the call's context as it is. */
export function withCallContext<K extends keyof CallContext, T>(key: K, value: CallContext[K], run: () => T): T {
  return storage.run({ ...storage.getStore(), [key]: value }, run);
}

/** What the call being served has set for `key`, if anything. */
export function callContext<K extends keyof CallContext>(key: K): CallContext[K] | undefined {
  return storage.getStore()?.[key];
}
