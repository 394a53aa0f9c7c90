-- AlterTable
ALTER TABLE "AuditEvent" ADD COLUMN     "httpRequestId" TEXT;
