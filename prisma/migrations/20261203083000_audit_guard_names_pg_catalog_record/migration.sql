-- The append-only guard on "AuditEvent", a second time: its working row is pg_catalog's record,
-- and its = is pg_catalog's. 20261203080000 declared the working row as a bare record to stop
-- a session's temporary table named "AuditEvent" from standing in for the table's row type;
-- but "record" is a type name looked up in the same search_path, temporary tables first, and
-- a session's temporary table named "record" with two column names swapped let an UPDATE set
-- empty columns of an event recorded before the chain (its note, for one) through the check
-- meant for filling in an empty workflow, target or environment. Now nothing in the body is
-- looked up through the search_path: the record type and both operators are named with their
-- schema (pg_catalog's *=, record_image_eq, and =). The function has no search_path of its
-- own (a SET clause would cost a configuration change on every row the chainer links). What
-- passes and what is refused is otherwise unchanged: the chainer's place, link and key once;
-- before the chain, an empty workflow, target or environment filled in once; every other
-- change, DELETE and TRUNCATE refused.
CREATE OR REPLACE FUNCTION latchkey_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rest pg_catalog.record;
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND OLD."seq" IS NULL AND OLD."hash" IS NULL AND OLD."prevHash" IS NULL AND OLD."chainKeyId" IS NULL
     AND NEW."seq" IS NOT NULL AND NEW."hash" IS NOT NULL AND NEW."prevHash" IS NOT NULL AND NEW."chainKeyId" IS NOT NULL THEN
    rest := NEW;
    rest."seq" := NULL; rest."prevHash" := NULL; rest."hash" := NULL; rest."chainKeyId" := NULL;
    IF rest OPERATOR(pg_catalog.*=) OLD THEN
      RETURN NEW;
    END IF;
  END IF;
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND OLD."hash" IS NULL AND NEW."hash" IS NULL AND OLD."seq" IS NOT NULL THEN
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
