-- scripts/load/clerk-to-firebase-cleanup.sql: removes the users the load scripts created (ids
-- 'ffffffff-ffff-...' and emails @rehearsal.invalid), so that scripts/rehearse can compare tables
-- exactly; the updates the load made kept the values they found. Prints how many it removed.
WITH gone AS (
  DELETE FROM public.users WHERE id >= 'ffffffff-ffff-0000-0000-000000000000' AND email LIKE '%@rehearsal.invalid' RETURNING 1
)
SELECT count(*) FROM gone;
