-- Changes that make what an instance keeps in memory stale are announced with NOTIFY in
-- the transaction that makes them, so every instance hears of them when it commits
-- (lib/db/changes.ts): a credential revoked, a grant leaving `active` or changing its end,
-- an API token revoked or changed, a person's groups or role changed, a signing key changed.
CREATE FUNCTION latchkey_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('latchkey_changes', TG_ARGV[0] || ':' || ((CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END) ->> TG_ARGV[1]));
  RETURN NULL;
END $$;

CREATE TRIGGER "Credential_changes" AFTER UPDATE ON "Credential" FOR EACH ROW
  WHEN (OLD."revokedAt" IS DISTINCT FROM NEW."revokedAt" OR OLD."expiresAt" IS DISTINCT FROM NEW."expiresAt" OR OLD.audience IS DISTINCT FROM NEW.audience)
  EXECUTE FUNCTION latchkey_notify_change('credential', 'id');
CREATE TRIGGER "Credential_deleted" AFTER DELETE ON "Credential" FOR EACH ROW EXECUTE FUNCTION latchkey_notify_change('credential', 'id');

CREATE TRIGGER "AccessRequest_changes" AFTER UPDATE ON "AccessRequest" FOR EACH ROW
  WHEN (OLD.status = 'active' AND (NEW.status IS DISTINCT FROM OLD.status OR NEW."expiresAt" IS DISTINCT FROM OLD."expiresAt"))
  EXECUTE FUNCTION latchkey_notify_change('request', 'id');
CREATE TRIGGER "AccessRequest_deleted" AFTER DELETE ON "AccessRequest" FOR EACH ROW EXECUTE FUNCTION latchkey_notify_change('request', 'id');

CREATE TRIGGER "ApiToken_changes" AFTER UPDATE ON "ApiToken" FOR EACH ROW
  WHEN (OLD."revokedAt" IS DISTINCT FROM NEW."revokedAt" OR OLD."expiresAt" IS DISTINCT FROM NEW."expiresAt" OR OLD.scopes IS DISTINCT FROM NEW.scopes OR OLD."userId" IS DISTINCT FROM NEW."userId" OR OLD."tokenHash" IS DISTINCT FROM NEW."tokenHash")
  EXECUTE FUNCTION latchkey_notify_change('token', 'id');
CREATE TRIGGER "ApiToken_deleted" AFTER DELETE ON "ApiToken" FOR EACH ROW EXECUTE FUNCTION latchkey_notify_change('token', 'id');

CREATE TRIGGER "User_changes" AFTER UPDATE ON "User" FOR EACH ROW
  WHEN (OLD.email IS DISTINCT FROM NEW.email OR OLD.groups IS DISTINCT FROM NEW.groups OR OLD.roles IS DISTINCT FROM NEW.roles OR OLD."requestOnly" IS DISTINCT FROM NEW."requestOnly" OR OLD.kind IS DISTINCT FROM NEW.kind)
  EXECUTE FUNCTION latchkey_notify_change('user', 'id');
CREATE TRIGGER "User_deleted" AFTER DELETE ON "User" FOR EACH ROW EXECUTE FUNCTION latchkey_notify_change('user', 'id');

CREATE TRIGGER "SigningKey_changes" AFTER UPDATE OR DELETE ON "SigningKey" FOR EACH ROW EXECUTE FUNCTION latchkey_notify_change('key', 'kid');
