-- AlterTable
ALTER TABLE "AccessRequest" ADD COLUMN     "extendsRequestId" TEXT;
