-- scripts/load/clerk-to-firebase-phase2.sql: the application during phase2 of clerk-to-firebase,
-- played by scripts/rehearse --with-load (pgbench, one transaction per run). The dual-writing app:
-- new users get their Clerk id and a firebase_uid, so phase3's checks find no NULL to refuse.

-- The mix of clerk-to-firebase-phase1.sql: reads (50), updates that keep the values (25), creates
-- (15) and deletes of its own users (10; ids 'ffffffff-ffff-...', emails @rehearsal.invalid).
-- The load never conflicts with itself: each client updates only its own users (those whose id
-- hashes to its client_id; scripts/rehearse passes -D load_clients=N) and creates and deletes only
-- its own (ids 'ffffffff-ffff-4CCC-...', CCC its client_id in hex); with no user of its own, it reads.
\set action random(1, 100)
\set r random(0, 4294967295)
\set d random(0, 65535)
SELECT 'ffffffff-ffff-4' || lpad(to_hex(:client_id % 4096), 3, '0') AS mine, lpad(to_hex(:d), 4, '0') AS at \gset
SELECT coalesce((SELECT id FROM public.users WHERE id >= lpad(to_hex(:r), 8, '0') AND id < 'ffffffff-ffff-0000-0000-000000000000'
                         AND (hashtext(id::text) & 2147483647) % :load_clients = :client_id ORDER BY id LIMIT 1),
                (SELECT id FROM public.users WHERE id < 'ffffffff-ffff-0000-0000-000000000000'
                         AND (hashtext(id::text) & 2147483647) % :load_clients = :client_id ORDER BY id LIMIT 1),
                '') AS uid \gset
SELECT (':uid' <> '')::int AS has_uid \gset
\if :has_uid
\else
SELECT id AS uid FROM public.users ORDER BY id LIMIT 1 \gset
\set action 1
\endif
\if :action <= 50
SELECT id, clerk_user_id, email, name, firebase_uid FROM public.users WHERE id = ':uid';
SELECT id FROM public.users WHERE clerk_user_id = (SELECT clerk_user_id FROM public.users WHERE id = ':uid');
SELECT count(*) FROM public.journal_entries WHERE user_id = ':uid';
\elif :action <= 75
UPDATE public.users SET name = name, updated_at = updated_at WHERE id = ':uid';
\elif :action <= 90
INSERT INTO public.users (id, clerk_user_id, email, name, firebase_uid)
VALUES (':mine-' || substr(gen_random_uuid()::text, 20), 'user_load_' || md5(random()::text),
        'load-' || md5(random()::text) || '@rehearsal.invalid', 'Load O''Test', 'load' || substr(md5(random()::text), 1, 24));
\else
DELETE FROM public.users WHERE id = coalesce(
  (SELECT id FROM public.users WHERE id >= ':mine-:at-000000000000' AND id <= ':mine-ffff-ffffffffffff' AND email LIKE '%@rehearsal.invalid' ORDER BY id LIMIT 1),
  (SELECT id FROM public.users WHERE id >= ':mine-0000-000000000000' AND id <= ':mine-ffff-ffffffffffff' AND email LIKE '%@rehearsal.invalid' ORDER BY id LIMIT 1));
\endif
