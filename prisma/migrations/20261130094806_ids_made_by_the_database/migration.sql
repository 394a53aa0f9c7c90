-- New requests and decisions get their ids from the database (a random UUID), whichever path
-- inserts them: Prisma's client, or the request lifecycle's own statements (lib/db/sql.ts).
-- Existing ids (cuids) stay as they are; an id is an opaque text.

-- AlterTable
ALTER TABLE "AccessRequest" ALTER COLUMN "id" SET DEFAULT (gen_random_uuid())::text;

-- AlterTable
ALTER TABLE "Approval" ALTER COLUMN "id" SET DEFAULT (gen_random_uuid())::text;
