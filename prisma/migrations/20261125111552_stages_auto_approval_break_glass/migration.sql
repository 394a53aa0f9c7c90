-- Approval stages replace the single approver-groups/approvals-needed pair. Existing
-- requests become one-stage requests with the same requirement.
ALTER TABLE "AccessRequest"
ADD COLUMN     "autoApprovedBy" TEXT,
ADD COLUMN     "breakGlass" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "breakGlassReason" TEXT,
ADD COLUMN     "currentStage" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "currentStageGroups" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "pendingExpiresAt" TIMESTAMP(3),
ADD COLUMN     "reviewComment" TEXT,
ADD COLUMN     "reviewedAt" TIMESTAMP(3),
ADD COLUMN     "reviewedById" TEXT,
ADD COLUMN     "stages" JSONB;

UPDATE "AccessRequest"
SET "stages" = jsonb_build_array(jsonb_build_object(
      'name', 'Approval', 'groups', to_jsonb("approverGroups"), 'required', "approvalsNeeded", 'oneFromEachGroup', false)),
    "currentStageGroups" = "approverGroups";

ALTER TABLE "AccessRequest" ALTER COLUMN "stages" SET NOT NULL,
DROP COLUMN "approvalsNeeded",
DROP COLUMN "approverGroups";

-- AlterTable
ALTER TABLE "Approval" ADD COLUMN     "approverGroups" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "stage" INTEGER NOT NULL DEFAULT 0;

-- CreateIndex
CREATE INDEX "AccessRequest_status_pendingExpiresAt_idx" ON "AccessRequest"("status", "pendingExpiresAt");

-- CreateIndex
CREATE INDEX "AccessRequest_breakGlass_reviewedAt_idx" ON "AccessRequest"("breakGlass", "reviewedAt");
