-- AlterEnum
ALTER TYPE "RequestStatus" ADD VALUE 'completed';

-- AlterTable
ALTER TABLE "AccessRequest" ADD COLUMN     "externalRef" TEXT,
ADD COLUMN     "externalState" TEXT;
