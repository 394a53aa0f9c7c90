-- AlterTable
ALTER TABLE "User" ADD COLUMN     "emailNotifications" BOOLEAN NOT NULL DEFAULT true;

-- AlterTable
ALTER TABLE "AccessRequest" ADD COLUMN     "ticketKey" TEXT,
ADD COLUMN     "ticketUrl" TEXT;
