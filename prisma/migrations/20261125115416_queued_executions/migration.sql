-- AlterTable
ALTER TABLE "AccessRequest" ADD COLUMN     "sealedSecret" TEXT,
ADD COLUMN     "secretRevealedAt" TIMESTAMP(3),
ADD COLUMN     "undoPending" BOOLEAN NOT NULL DEFAULT false;
