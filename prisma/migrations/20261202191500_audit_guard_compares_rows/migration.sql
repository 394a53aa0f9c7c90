-- The append-only guard on "AuditEvent" checks that an UPDATE changes nothing but what it may
-- (the chainer's place, link and key; before the chain, an empty workflow, target or
-- environment filled in) by comparing whole rows, with those columns set aside, as they are
-- stored (record_image_eq, the *= operator), not by converting both rows to jsonb. The same
-- rows pass and the same are refused, every column included, also one added later; a value
-- stored differently but equal as jsonb (1.0 for 1.00 in "data") is now refused too. The
-- chainer gives each event its place with this guard run once a row: the jsonb conversions
-- were about a sixth of that UPDATE's time.
CREATE OR REPLACE FUNCTION latchkey_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rest "AuditEvent";
BEGIN
  IF TG_OP = 'UPDATE' AND OLD."seq" IS NULL AND OLD."hash" IS NULL AND OLD."prevHash" IS NULL AND OLD."chainKeyId" IS NULL
     AND NEW."seq" IS NOT NULL AND NEW."hash" IS NOT NULL AND NEW."prevHash" IS NOT NULL AND NEW."chainKeyId" IS NOT NULL THEN
    rest := NEW;
    rest."seq" := NULL; rest."prevHash" := NULL; rest."hash" := NULL; rest."chainKeyId" := NULL;
    IF rest *= OLD THEN
      RETURN NEW;
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD."hash" IS NULL AND NEW."hash" IS NULL AND OLD."seq" IS NOT NULL THEN
    rest := NEW;
    IF OLD."workflowId" IS NULL THEN rest."workflowId" := NULL; END IF;
    IF OLD."targetId" IS NULL THEN rest."targetId" := NULL; END IF;
    IF OLD."environment" IS NULL THEN rest."environment" := NULL; END IF;
    IF rest *= OLD THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'audit events are append-only: % on "AuditEvent" is refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
