-- AlterTable
ALTER TABLE "AuditEvent" ADD COLUMN     "chainKeyId" TEXT;

-- AlterTable
ALTER TABLE "AuditChainHead" ADD COLUMN     "keyIdsFromSeq" BIGINT NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "AuditVerification" ADD COLUMN     "anchoredEvents" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "legacyEvents" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "missingKeyIds" TEXT,
ADD COLUMN     "outcome" TEXT,
ADD COLUMN     "uncheckedEvents" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "InstallationSetting" (
    "name" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "InstallationSetting_pkey" PRIMARY KEY ("name")
);

-- Events chained from here on name their key; those before were chained under the key in use until now.
UPDATE "AuditChainHead" SET "keyIdsFromSeq" = "lastSeq" + 1;

-- Walks recorded before outcomes existed knew only intact or altered.
UPDATE "AuditVerification" SET "outcome" = CASE WHEN "ok" THEN 'intact' ELSE 'altered' END WHERE "finishedAt" IS NOT NULL AND "ok" IS NOT NULL;

-- Events recorded before the chain existed may have their workflow, target and environment
-- filled in (each once, from empty), and nothing else: the backfill that lets History filter
-- them (lib/audit/anchor.ts). Every other UPDATE, DELETE and TRUNCATE is refused as before.
CREATE OR REPLACE FUNCTION latchkey_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD."hash" IS NULL AND NEW."hash" IS NULL
     AND (OLD."workflowId" IS NULL OR OLD."workflowId" IS NOT DISTINCT FROM NEW."workflowId")
     AND (OLD."targetId" IS NULL OR OLD."targetId" IS NOT DISTINCT FROM NEW."targetId")
     AND (OLD."environment" IS NULL OR OLD."environment" IS NOT DISTINCT FROM NEW."environment")
     AND (to_jsonb(NEW) - 'workflowId' - 'targetId' - 'environment') = (to_jsonb(OLD) - 'workflowId' - 'targetId' - 'environment') THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit events are append-only: % on "AuditEvent" is refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Their workflow and target come from the request they are about (environment, from the policy, is filled by the backfill).
UPDATE "AuditEvent" e SET "workflowId" = r."workflowId", "targetId" = r."targetId"
FROM "AccessRequest" r, "AuditChainHead" h
WHERE e."requestId" = r.id AND e."hash" IS NULL AND e."seq" < h."genesisSeq" AND e."workflowId" IS NULL AND e."targetId" IS NULL;
