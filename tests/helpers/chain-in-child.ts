export {};

/**
 * The audit chainer in a process of its own, linking in small batches (argv[2] events each),
 * so a test can kill it part-way through (tests/integration/audit-chainer.test.ts). Reads the
 * environment the test set (DATABASE_URL, LATCHKEY_ENCRYPTION_KEY).
 */
const { chainAuditEvents } = await import("../../lib/audit/chainer");
const { disconnectDb } = await import("../../lib/db");
console.log(`chained ${await chainAuditEvents(Number(process.argv[2] ?? 50))}`);
await disconnectDb();
