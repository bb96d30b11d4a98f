-- scripts/load/string-to-uuid-cleanup.sql: removes what string-to-uuid.sql created (ids
-- 'ffffffff-ffff-...' with its markers), so that scripts/rehearse can compare tables exactly; the
-- updates the load made kept the values they found. Prints how many rows it removed.
WITH j AS (DELETE FROM public.journal_entries WHERE id >= 'ffffffff-ffff-0000-0000-000000000000' AND title = 'rehearsal load' RETURNING 1),
     t AS (DELETE FROM public.tags WHERE id >= 'ffffffff-ffff-0000-0000-000000000000' AND name LIKE 'rehearsal load %' RETURNING 1),
     r AS (DELETE FROM public.reminders WHERE id >= 'ffffffff-ffff-0000-0000-000000000000' AND note = 'rehearsal load' RETURNING 1),
     u AS (DELETE FROM public.users WHERE id >= 'ffffffff-ffff-0000-0000-000000000000'
                                      AND email LIKE '%@rehearsal.invalid' RETURNING 1)
SELECT (SELECT count(*) FROM j) + (SELECT count(*) FROM t) + (SELECT count(*) FROM r) + (SELECT count(*) FROM u);
