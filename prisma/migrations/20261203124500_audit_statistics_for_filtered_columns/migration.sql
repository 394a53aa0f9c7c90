-- ANALYZE of "AuditEvent" no longer computes statistics for the ten columns that no statement of
-- the portal filters, joins, sorts or groups on: they are only read back (the event's payload,
-- where it came from, its seal). ANALYZE samples up to 30,000 rows however large the table, and
-- for each column sorts and counts the sampled values: for these (jsonb payloads, random seals,
-- request ids, user agents) that was about half of its time, and autovacuum analyzes the audit
-- events again after every tenth of the table is written or linked (each event counts twice: its
-- insert and the chainer's link). Measured on PostgreSQL 15 with 60,000 events (jsonb payloads,
-- random seals): ANALYZE "AuditEvent" took 760 to 1,118 ms, and 387 to 478 ms with these ten
-- columns left out. The columns the history, the chainer and verification filter on (actorEmail,
-- requestId, workflowId, targetId, environment, toStatus, action, note, occurredAt, seq, hash,
-- prevHash, chainKeyId) keep theirs, so no condition is estimated differently (for the ten, the
-- planner now takes a variable-length value as 32 bytes wide). Taking a member out of data
-- (data -> 'userId', Prisma's path filters) never used the column's statistics, though containment
-- (@>) and ? would. tests/integration/audit-statistics.test.ts holds the portal's statements to
-- all that. A database analyzed before this keeps the statistics it had for the ten, unused and no
-- longer refreshed. A DBA may set any of them back (ALTER TABLE "AuditEvent" ALTER COLUMN ... SET
-- STATISTICS -1).
ALTER TABLE "AuditEvent"
  ALTER COLUMN "data" SET STATISTICS 0,
  ALTER COLUMN "ip" SET STATISTICS 0,
  ALTER COLUMN "userAgent" SET STATISTICS 0,
  ALTER COLUMN "route" SET STATISTICS 0,
  ALTER COLUMN "httpRequestId" SET STATISTICS 0,
  ALTER COLUMN "seal" SET STATISTICS 0,
  ALTER COLUMN "sealKeyId" SET STATISTICS 0,
  ALTER COLUMN "actorId" SET STATISTICS 0,
  ALTER COLUMN "actorType" SET STATISTICS 0,
  ALTER COLUMN "fromStatus" SET STATISTICS 0;
