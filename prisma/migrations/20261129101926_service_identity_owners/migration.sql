-- CreateEnum
CREATE TYPE "ServiceChangeStatus" AS ENUM ('pending', 'approved', 'rejected', 'cancelled');

-- CreateTable
CREATE TABLE "ServiceOwner" (
    "serviceId" TEXT NOT NULL,
    "ownerId" TEXT NOT NULL,
    "addedById" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ServiceOwner_pkey" PRIMARY KEY ("serviceId","ownerId")
);

-- CreateTable
CREATE TABLE "ServiceIdentityChange" (
    "id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "serviceId" TEXT,
    "name" TEXT NOT NULL,
    "proposal" JSONB NOT NULL,
    "status" "ServiceChangeStatus" NOT NULL DEFAULT 'pending',
    "requestedById" TEXT NOT NULL,
    "decidedById" TEXT,
    "decidedAt" TIMESTAMP(3),
    "comment" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ServiceIdentityChange_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ServiceOwner_ownerId_idx" ON "ServiceOwner"("ownerId");

-- CreateIndex
CREATE INDEX "ServiceIdentityChange_status_createdAt_idx" ON "ServiceIdentityChange"("status", "createdAt");

-- AddForeignKey
ALTER TABLE "ServiceOwner" ADD CONSTRAINT "ServiceOwner_serviceId_fkey" FOREIGN KEY ("serviceId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ServiceOwner" ADD CONSTRAINT "ServiceOwner_ownerId_fkey" FOREIGN KEY ("ownerId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Every existing service identity is owned by the admin who made it.
INSERT INTO "ServiceOwner" ("serviceId", "ownerId", "addedById")
SELECT s.id, s."createdById", s."createdById"
FROM "User" s JOIN "User" o ON o.id = s."createdById"
WHERE s.kind = 'service';
