-- AlterTable
ALTER TABLE "User" ADD COLUMN     "active" BOOLEAN NOT NULL DEFAULT true,
ADD COLUMN     "deactivatedAt" TIMESTAMP(3);

-- A person deactivated by the directory must be refused at once by every instance's caches
-- (API tokens are kept in memory by identity), so the change notification covers `active` too.
DROP TRIGGER "User_changes" ON "User";
CREATE TRIGGER "User_changes" AFTER UPDATE ON "User" FOR EACH ROW
  WHEN (OLD.email IS DISTINCT FROM NEW.email OR OLD.groups IS DISTINCT FROM NEW.groups OR OLD.roles IS DISTINCT FROM NEW.roles OR OLD."requestOnly" IS DISTINCT FROM NEW."requestOnly" OR OLD.kind IS DISTINCT FROM NEW.kind OR OLD.active IS DISTINCT FROM NEW.active)
  EXECUTE FUNCTION latchkey_notify_change('user', 'id');
