-- Autovacuum on the tables every request and approval writes (the audit events, the requests,
-- their decisions and credentials) pauses 20 ms, not PostgreSQL's default 2 ms, after each
-- round of work (autovacuum_vacuum_cost_delay, the default before PostgreSQL 12): the same work
-- spread over more time, so that it does not take a core's share for seconds from the portal's
-- own queries. Measured with bench:approvals on 2026-12-03 (two cores shared by the portal and
-- PostgreSQL): with 2 ms, vacuuming and analyzing the audit events took 890 to 930 ms of CPU in
-- 1.7 to 2.1 s, and the paced phase's largest or second largest slow episode (11 and 12
-- approvals at once) came while it or the requests' and credentials' ran; with 20 ms, 900 to
-- 990 ms of CPU in 8.8 to 9.0 s, with no episode of more than 2 approvals beside it. These
-- tables are appended to and updated a row at a time, never rewritten in bulk, so a slower
-- vacuum leaves no more behind than it can clear before the next (autovacuum_naptime, a minute).
-- A table's own setting wins over the server's; a DBA can still set another per table.
ALTER TABLE "AuditEvent" SET (autovacuum_vacuum_cost_delay = 20);
ALTER TABLE "AccessRequest" SET (autovacuum_vacuum_cost_delay = 20);
ALTER TABLE "Approval" SET (autovacuum_vacuum_cost_delay = 20);
ALTER TABLE "Credential" SET (autovacuum_vacuum_cost_delay = 20);
