-- New requests and decisions get their ids from the database, whichever path inserts them:
-- Prisma's client, or the request lifecycle's own statements (lib/db/sql.ts). A random UUID
-- without its dashes: 32 lower-case letters and digits, like the cuids before it (existing
-- ids stay as they are; an id is an opaque text).

-- AlterTable
ALTER TABLE "AccessRequest" ALTER COLUMN "id" SET DEFAULT replace((gen_random_uuid())::text, '-'::text, ''::text);

-- AlterTable
ALTER TABLE "Approval" ALTER COLUMN "id" SET DEFAULT replace((gen_random_uuid())::text, '-'::text, ''::text);
