-- The auditor's history reads in time order ("occurredAt", id): each filter gets a btree index that
-- leads with its column and continues in that order, and text search combined with any filters
-- is one GIN index (btree_gin, from PostgreSQL's contrib; a trusted extension, so the database's
-- owner may create it) over the week, the note's text and the filter columns (lib/history/search.ts).
--
-- On a large AuditEvent table these builds take a while (about 20 s for 1,000,000 events on
-- 2 vCPUs), and CREATE INDEX holds a lock that makes audited changes wait until it is done.
-- Migrations run in a transaction, where CREATE INDEX CONCURRENTLY is not allowed. To upgrade a
-- large installation without that pause, build the indexes first with the statements below,
-- each with CONCURRENTLY added after CREATE INDEX (outside a transaction, e.g. in psql); every
-- statement here is IF NOT EXISTS / IF EXISTS, so the migration then only drops the old ones.

CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE INDEX IF NOT EXISTS "AuditEvent_occurredAt_id_idx" ON "AuditEvent"("occurredAt", "id") INCLUDE ("requestId");
CREATE INDEX IF NOT EXISTS "AuditEvent_actorEmail_occurredAt_id_idx" ON "AuditEvent"("actorEmail", "occurredAt", "id");
CREATE INDEX IF NOT EXISTS "AuditEvent_requestId_occurredAt_id_idx" ON "AuditEvent"("requestId", "occurredAt", "id");
CREATE INDEX IF NOT EXISTS "AuditEvent_toStatus_occurredAt_id_idx" ON "AuditEvent"("toStatus", "occurredAt", "id");
CREATE INDEX IF NOT EXISTS "AuditEvent_action_occurredAt_id_idx" ON "AuditEvent"("action", "occurredAt", "id");
CREATE INDEX IF NOT EXISTS "AuditEvent_workflowId_occurredAt_id_idx" ON "AuditEvent"("workflowId", "occurredAt", "id");
CREATE INDEX IF NOT EXISTS "AuditEvent_targetId_occurredAt_id_idx" ON "AuditEvent"("targetId", "occurredAt", "id");
CREATE INDEX IF NOT EXISTS "AuditEvent_environment_occurredAt_id_idx" ON "AuditEvent"("environment", "occurredAt", "id");
-- Only events with a note can match a search, so only they are indexed; and without fastupdate,
-- so that a search never scans a pending list of recent inserts (the week-by-week walk would
-- scan it once per week).
CREATE INDEX IF NOT EXISTS "AuditEvent_history_search_idx" ON "AuditEvent" USING gin (
  (date_trunc('week', "occurredAt")), (to_tsvector('english', coalesce("note", ''))), "action", "environment", "workflowId", "targetId", "toStatus", "actorEmail"
) WITH (fastupdate = off) WHERE "note" IS NOT NULL;
CREATE INDEX IF NOT EXISTS "Approval_approverId_decision_idx" ON "Approval"("approverId", "decision") INCLUDE ("requestId");

DROP INDEX IF EXISTS "AuditEvent_occurredAt_idx";
DROP INDEX IF EXISTS "AuditEvent_actorEmail_id_idx";
DROP INDEX IF EXISTS "AuditEvent_requestId_id_idx";
DROP INDEX IF EXISTS "AuditEvent_toStatus_id_idx";
DROP INDEX IF EXISTS "AuditEvent_action_id_idx";
DROP INDEX IF EXISTS "AuditEvent_workflowId_id_idx";
DROP INDEX IF EXISTS "AuditEvent_targetId_id_idx";
DROP INDEX IF EXISTS "AuditEvent_environment_id_idx";
DROP INDEX IF EXISTS "AuditEvent_note_search_idx";
DROP INDEX IF EXISTS "Approval_approverId_idx";
