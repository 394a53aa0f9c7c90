-- DropIndex
DROP INDEX "AuditEvent_actorEmail_occurredAt_idx";

-- DropIndex
DROP INDEX "AuditEvent_toStatus_occurredAt_idx";

-- DropIndex
DROP INDEX "AuditEvent_action_occurredAt_idx";

-- AlterTable
ALTER TABLE "AuditEvent" ADD COLUMN     "environment" TEXT,
ADD COLUMN     "hash" TEXT,
ADD COLUMN     "ip" TEXT,
ADD COLUMN     "note" TEXT,
ADD COLUMN     "prevHash" TEXT,
ADD COLUMN     "route" TEXT,
ADD COLUMN     "seq" BIGINT,
ADD COLUMN     "targetId" TEXT,
ADD COLUMN     "userAgent" TEXT,
ADD COLUMN     "workflowId" TEXT;

-- CreateTable
CREATE TABLE "AuditChainHead" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "lastSeq" BIGINT NOT NULL,
    "lastHash" TEXT NOT NULL,
    "genesisSeq" BIGINT NOT NULL,

    CONSTRAINT "AuditChainHead_pkey" PRIMARY KEY ("id")
);

-- Events recorded before the chain existed get their place in it, in the order they were
-- written, but no hash: verification reports them as predating the chain.
UPDATE "AuditEvent" e SET "seq" = n.seq FROM (SELECT id, row_number() OVER (ORDER BY id) AS seq FROM "AuditEvent") n WHERE e.id = n.id;
ALTER TABLE "AuditEvent" ALTER COLUMN "seq" SET NOT NULL;
INSERT INTO "AuditChainHead" ("id", "lastSeq", "lastHash", "genesisSeq")
SELECT 1, COALESCE(MAX("seq"), 0), '', COALESCE(MAX("seq"), 0) + 1 FROM "AuditEvent";

-- CreateTable
CREATE TABLE "AuditVerification" (
    "id" TEXT NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMP(3),
    "trigger" TEXT NOT NULL,
    "ok" BOOLEAN,
    "eventsChecked" INTEGER NOT NULL DEFAULT 0,
    "lastSeq" BIGINT,
    "firstBadSeq" BIGINT,
    "problem" TEXT,

    CONSTRAINT "AuditVerification_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "AuditVerification_startedAt_idx" ON "AuditVerification"("startedAt");

-- CreateIndex
CREATE INDEX "Approval_approverId_idx" ON "Approval"("approverId");

-- CreateIndex
CREATE UNIQUE INDEX "AuditEvent_seq_key" ON "AuditEvent"("seq");

-- CreateIndex
CREATE INDEX "AuditEvent_actorEmail_id_idx" ON "AuditEvent"("actorEmail", "id");

-- CreateIndex
CREATE INDEX "AuditEvent_toStatus_id_idx" ON "AuditEvent"("toStatus", "id");

-- CreateIndex
CREATE INDEX "AuditEvent_action_id_idx" ON "AuditEvent"("action", "id");

-- CreateIndex
CREATE INDEX "AuditEvent_workflowId_id_idx" ON "AuditEvent"("workflowId", "id");

-- CreateIndex
CREATE INDEX "AuditEvent_targetId_id_idx" ON "AuditEvent"("targetId", "id");

-- CreateIndex
CREATE INDEX "AuditEvent_environment_id_idx" ON "AuditEvent"("environment", "id");

-- Text search over justifications, comments and reasons.
CREATE INDEX "AuditEvent_note_search_idx" ON "AuditEvent" USING gin (to_tsvector('english', coalesce("note", '')));

-- Audit events are append-only: UPDATE, DELETE and TRUNCATE are refused for every role
-- that does not bypass triggers. A superuser who edits rows anyway is caught by the chain.
CREATE FUNCTION latchkey_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only: % on "AuditEvent" is refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER "AuditEvent_append_only" BEFORE UPDATE OR DELETE ON "AuditEvent" FOR EACH ROW EXECUTE FUNCTION latchkey_audit_append_only();
CREATE TRIGGER "AuditEvent_no_truncate" BEFORE TRUNCATE ON "AuditEvent" FOR EACH STATEMENT EXECUTE FUNCTION latchkey_audit_append_only();
