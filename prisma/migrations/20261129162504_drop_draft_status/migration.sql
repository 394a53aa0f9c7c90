-- The draft status was never reachable (a request is made pending), so it leaves the enum.
-- PostgreSQL cannot drop an enum value: the type is replaced and the columns converted.
-- No row can be draft; if one were, stop here with the rows to look at rather than fail
-- halfway through the conversion. (lib/db/migrate.ts runs this in one transaction.)
DO $$
DECLARE
  requests bigint;
  events bigint;
BEGIN
  SELECT count(*) INTO requests FROM "AccessRequest" WHERE status = 'draft';
  SELECT count(*) INTO events FROM "AuditEvent" WHERE "fromStatus" = 'draft' OR "toStatus" = 'draft';
  IF requests > 0 OR events > 0 THEN
    RAISE EXCEPTION 'drop_draft_status: % request(s) and % audit event(s) have the status draft, which Latchkey never sets. Find them with SELECT id FROM "AccessRequest" WHERE status = ''draft'' (and the same for AuditEvent''s fromStatus/toStatus), decide what they should be, and migrate again.', requests, events;
  END IF;
END $$;

-- The change-notification trigger compares the status column, so it is dropped while the
-- column changes type and created again as it was (20261125153000_change_notifications).
DROP TRIGGER "AccessRequest_changes" ON "AccessRequest";

-- AlterEnum
CREATE TYPE "RequestStatus_new" AS ENUM ('pending', 'approved', 'executing', 'active', 'completed', 'expired', 'revoked', 'rejected', 'cancelled', 'failed');
ALTER TABLE "AccessRequest" ALTER COLUMN "status" DROP DEFAULT;
ALTER TABLE "AccessRequest" ALTER COLUMN "status" TYPE "RequestStatus_new" USING ("status"::text::"RequestStatus_new");
ALTER TABLE "AuditEvent" ALTER COLUMN "fromStatus" TYPE "RequestStatus_new" USING ("fromStatus"::text::"RequestStatus_new");
ALTER TABLE "AuditEvent" ALTER COLUMN "toStatus" TYPE "RequestStatus_new" USING ("toStatus"::text::"RequestStatus_new");
ALTER TYPE "RequestStatus" RENAME TO "RequestStatus_old";
ALTER TYPE "RequestStatus_new" RENAME TO "RequestStatus";
DROP TYPE "RequestStatus_old";
ALTER TABLE "AccessRequest" ALTER COLUMN "status" SET DEFAULT 'pending';

CREATE TRIGGER "AccessRequest_changes" AFTER UPDATE ON "AccessRequest" FOR EACH ROW
  WHEN (OLD.status = 'active' AND (NEW.status IS DISTINCT FROM OLD.status OR NEW."expiresAt" IS DISTINCT FROM OLD."expiresAt"))
  EXECUTE FUNCTION latchkey_notify_change('request', 'id');
