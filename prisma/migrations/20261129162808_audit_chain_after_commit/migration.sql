-- AlterTable
ALTER TABLE "AuditEvent" ADD COLUMN     "seal" TEXT,
ADD COLUMN     "sealKeyId" TEXT,
ALTER COLUMN "seq" DROP NOT NULL;

-- AlterTable
ALTER TABLE "AuditChainHead" ADD COLUMN     "sealsFromSeq" BIGINT NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "AuditVerification" ADD COLUMN     "oldestUnchainedAt" TIMESTAMP(3),
ADD COLUMN     "unchainedEvents" INTEGER NOT NULL DEFAULT 0;

-- Events from here on are sealed as they are written and linked into the chain after they
-- commit, by the one chainer (lib/audit/chainer.ts); those before keep their one hash.
UPDATE "AuditChainHead" SET "sealsFromSeq" = "lastSeq" + 1;

-- The chainer finds the events still waiting for their place without reading the others.
CREATE INDEX "AuditEvent_unchained_idx" ON "AuditEvent" ("id") WHERE "seq" IS NULL;

-- Audit events stay append-only, with two changes allowed: the backfill of events recorded
-- before the chain (as before), and the chainer giving an event its place, once: from no
-- place, link and link key to a place, link and link key, and nothing else.
CREATE OR REPLACE FUNCTION latchkey_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD."seq" IS NULL AND OLD."hash" IS NULL AND OLD."prevHash" IS NULL AND OLD."chainKeyId" IS NULL
     AND NEW."seq" IS NOT NULL AND NEW."hash" IS NOT NULL AND NEW."prevHash" IS NOT NULL AND NEW."chainKeyId" IS NOT NULL
     AND (to_jsonb(NEW) - 'seq' - 'prevHash' - 'hash' - 'chainKeyId') = (to_jsonb(OLD) - 'seq' - 'prevHash' - 'hash' - 'chainKeyId') THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD."hash" IS NULL AND NEW."hash" IS NULL AND OLD."seq" IS NOT NULL
     AND (OLD."workflowId" IS NULL OR OLD."workflowId" IS NOT DISTINCT FROM NEW."workflowId")
     AND (OLD."targetId" IS NULL OR OLD."targetId" IS NOT DISTINCT FROM NEW."targetId")
     AND (OLD."environment" IS NULL OR OLD."environment" IS NOT DISTINCT FROM NEW."environment")
     AND (to_jsonb(NEW) - 'workflowId' - 'targetId' - 'environment') = (to_jsonb(OLD) - 'workflowId' - 'targetId' - 'environment') THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit events are append-only: % on "AuditEvent" is refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
