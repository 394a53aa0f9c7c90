-- The append-only guard on "AuditEvent" no longer names a type or an operator that a session
-- could put in front of its own. Since 20261202191500 it declared its working row as
-- "AuditEvent", a name looked up in the session's search_path, where pg_temp comes first for
-- tables and types: a session could create a temporary table "AuditEvent" with two column
-- names swapped, and an UPDATE of the real table then set a filled-in column (the actor's
-- e-mail, for one) through the check meant for filling in an empty workflow, target or
-- environment. The working row is now a plain record, given its shape by NEW (the trigger's
-- table, fixed when the trigger was made), and the comparison names its operator with its
-- schema (pg_catalog's *=, record_image_eq). Nothing else in the body is looked up by name, so
-- the function needs no search_path of its own (a SET clause would cost a configuration change
-- on every row the chainer links). What passes and what is refused is otherwise unchanged: the
-- chainer's place, link and key once; before the chain, an empty workflow, target or
-- environment filled in once; every other change, DELETE and TRUNCATE refused.
CREATE OR REPLACE FUNCTION latchkey_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rest record;
BEGIN
  IF TG_OP = 'UPDATE' AND OLD."seq" IS NULL AND OLD."hash" IS NULL AND OLD."prevHash" IS NULL AND OLD."chainKeyId" IS NULL
     AND NEW."seq" IS NOT NULL AND NEW."hash" IS NOT NULL AND NEW."prevHash" IS NOT NULL AND NEW."chainKeyId" IS NOT NULL THEN
    rest := NEW;
    rest."seq" := NULL; rest."prevHash" := NULL; rest."hash" := NULL; rest."chainKeyId" := NULL;
    IF rest OPERATOR(pg_catalog.*=) OLD THEN
      RETURN NEW;
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD."hash" IS NULL AND NEW."hash" IS NULL AND OLD."seq" IS NOT NULL THEN
    rest := NEW;
    IF OLD."workflowId" IS NULL THEN rest."workflowId" := NULL; END IF;
    IF OLD."targetId" IS NULL THEN rest."targetId" := NULL; END IF;
    IF OLD."environment" IS NULL THEN rest."environment" := NULL; END IF;
    IF rest OPERATOR(pg_catalog.*=) OLD THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'audit events are append-only: % on "AuditEvent" is refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
