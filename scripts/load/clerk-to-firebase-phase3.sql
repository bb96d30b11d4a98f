-- scripts/load/clerk-to-firebase-phase3.sql: the application during phase3 of clerk-to-firebase,
-- played by scripts/rehearse --with-load (pgbench, one transaction per run). The Firebase app: it no
-- longer reads or writes clerk_user_id (phase3 drops it) and finds users by firebase_uid.

-- Reads (50), updates that keep the values (25), creates (15) and deletes of its own users (10; ids
-- 'ffffffff-ffff-...', emails @rehearsal.invalid, removed by clerk-to-firebase-cleanup.sql).
\set action random(1, 100)
\set r random(0, 4294967295)
\set d random(0, 4095)
SELECT id AS uid, firebase_uid AS fuid FROM public.users
 WHERE id = coalesce((SELECT id FROM public.users WHERE id >= lpad(to_hex(:r), 8, '0') ORDER BY id LIMIT 1),
                     (SELECT id FROM public.users ORDER BY id LIMIT 1)) \gset
\if :action <= 50
SELECT id, email, name, firebase_uid, display_name FROM public.users WHERE firebase_uid = ':fuid';
SELECT count(*) FROM public.journal_entries WHERE user_id = ':uid';
\elif :action <= 75
UPDATE public.users SET name = name, updated_at = updated_at WHERE id = ':uid';
\elif :action <= 90
INSERT INTO public.users (id, email, name, firebase_uid)
VALUES ('ffffffff-ffff-' || substr(gen_random_uuid()::text, 15), 'load-' || md5(random()::text) || '@rehearsal.invalid',
        'Load O''Test', 'load' || substr(md5(random()::text), 1, 24));
\else
DELETE FROM public.users WHERE id = coalesce(
  (SELECT id FROM public.users WHERE id >= 'ffffffff-ffff-4' || lpad(to_hex(:d), 3, '0') AND email LIKE '%@rehearsal.invalid' ORDER BY id LIMIT 1),
  (SELECT id FROM public.users WHERE id >= 'ffffffff-ffff-0000-0000-000000000000' AND email LIKE '%@rehearsal.invalid' ORDER BY id LIMIT 1));
\endif
