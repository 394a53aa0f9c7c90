export {};

/**
 * npm run audit:anchor   gives events recorded before the chain existed their workflow, target
 * and environment and anchors them into the chain with a checkpoint (lib/audit/anchor.ts);
 * resumable, and does nothing once they are anchored.
 * npm run audit:verify   walks the audit chain, prints the result and records it (the admin
 * Audit page shows the last one). Exit status 1 when an event was altered, removed or
 * inserted, naming the first; exit status 3 when events were chained under an encryption key
 * LATCHKEY_ENCRYPTION_KEY does not hold (cannot be checked: not tampering). Also reports the
 * events committed but not yet linked into the chain, and how old the oldest is. Reads DATABASE_URL
 * and LATCHKEY_ENCRYPTION_KEY (the chain key).
 */
process.env.NEXTAUTH_SECRET ??= "x".repeat(32);
process.env.OIDC_ISSUER ??= "http://unused.invalid";
process.env.OIDC_CLIENT_ID ??= "unused";
process.env.OIDC_CLIENT_SECRET ??= "unused";
const { verifyAuditChain } = await import("../lib/audit/verify");
const { disconnectDb } = await import("../lib/db");

if (process.argv[2] === "anchor") {
  const { backfillAndAnchor } = await import("../lib/audit/anchor");
  const r = await backfillAndAnchor({ type: "system", email: "npm run audit:anchor" });
  if (r.legacyEvents === 0) console.log("No events predate the audit chain: nothing to anchor.");
  else if (r.anchorSeq === null) console.log(`The ${r.legacyEvents} events recorded before the chain were anchored before; nothing to do.`);
  else
    console.log(
      `Filled in ${r.filled} workflow, target or environment values and anchored ${r.anchored} events recorded before the chain (event #${r.anchorSeq}).`,
    );
  await disconnectDb();
  process.exit(0);
}

const started = Date.now();
const result = await verifyAuditChain("cli");
const seconds = ((Date.now() - started) / 1000).toFixed(1);
// Committed events the chainer has not linked yet: each checked by its own seal; their number and the oldest one's age show a chainer falling behind.
const waiting = result.unchainedEvents
  ? ` ${result.unchainedEvents} more, not yet chained, were checked by their own seals; the oldest was recorded ${Math.round((Date.now() - result.oldestUnchainedAt!.getTime()) / 1000)} s ago.`
  : " No event waits to be chained.";
if (result.ok) {
  console.log(
    `Audit chain intact: ${result.eventsChecked} events checked up to #${result.lastSeq} in ${seconds} s${result.legacyEvents ? ` (${result.legacyEvents} recorded before the chain existed carry no hash; ${result.anchoredEvents} of them are anchored by a checkpoint${result.anchoredEvents < result.legacyEvents ? ": run npm run audit:anchor" : ""})` : ""}.${waiting}`,
  );
} else if (result.outcome === "unverifiable") {
  console.error(`Audit chain NOT CHECKED in full: no alteration found in ${result.eventsChecked} events, but ${result.problem}`);
  process.exitCode = 3;
} else {
  console.error(`Audit chain BROKEN at ${result.firstBadSeq === null ? "an event not yet chained" : `event #${result.firstBadSeq}`}: ${result.problem}`);
  console.error(`${result.eventsChecked} events before it are intact.`);
  process.exitCode = 1;
}
await disconnectDb();
