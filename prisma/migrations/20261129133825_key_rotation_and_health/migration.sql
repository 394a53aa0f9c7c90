-- AlterTable
ALTER TABLE "AuditEvent" ADD COLUMN     "chainKeyId" TEXT;

-- AlterTable
ALTER TABLE "AuditChainHead" ADD COLUMN     "keyIdsFromSeq" BIGINT NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "AuditVerification" ADD COLUMN     "missingKeyIds" TEXT,
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
