-- ANALYZE of "AuditEvent" keeps no statistics for the columns no statement of the portal filters,
-- joins, sorts or groups on: they are only read back (the event's payload, where it came from,
-- its seal). ANALYZE samples 30,000 rows whatever the table's size, and for each column sorts and
-- counts the sampled values: for these (jsonb payloads, random seals, request ids, user agents)
-- that was about half of its time, and autovacuum analyzes the audit events again after every
-- tenth of the table is written or linked (each event counts twice: its insert and the chainer's
-- link). Measured on PostgreSQL 15 with 60,000 events (jsonb payloads, random seals): ANALYZE
-- "AuditEvent" took 760 to 1,118 ms, and 387 to 478 ms with these ten columns left out. The
-- columns the history, the chainer and verification filter on (actor, request, workflow, target,
-- environment, status, action, note, time, seq, hash, prevHash, chainKeyId) keep theirs, so their
-- plans do not change, and a filter on the JSON payload's members (data -> 'userId') never used the
-- column's statistics. tests/integration/audit-statistics.test.ts holds the portal's statements to
-- that. A DBA may set any of them back (ALTER TABLE "AuditEvent" ALTER COLUMN ... SET STATISTICS -1).
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
