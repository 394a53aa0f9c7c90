-- AlterEnum
ALTER TYPE "KeyStatus" ADD VALUE 'next';

-- AlterTable
ALTER TABLE "SigningKey" ADD COLUMN     "activatesAt" TIMESTAMP(3);
