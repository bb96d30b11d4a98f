-- scripts/load/string-to-uuid.sql: the application during every phase of string-to-uuid, played by
-- scripts/rehearse --with-load (pgbench -D load_clients=N, one transaction per run). Its SQL works
-- whether users.id and the foreign keys to it are varchar(36) or uuid: ids come as quoted literals.

-- The load never conflicts with itself, so that a failure under it is the migration's: each client
-- writes only its own users (those whose id hashes to its client_id) and only the rows it created
-- itself (ids 'ffffffff-ffff-4CCC-...', CCC its client_id in hex). Each run picks a random user of
-- its own (never one the load created), then by weight reads it with its journal entries and tags
-- (50), updates it and its entries with the values they have (20: row locks and triggers, no
-- change), creates a user and an entry, a tag and a reminder of its user (20), or deletes one of
-- each that it created (10). What it creates carries a marker (email @rehearsal.invalid,
-- 'rehearsal load'); string-to-uuid-cleanup.sql removes it. A client with no user of its own (fewer
-- users than clients) only reads.
\set action random(1, 100)
\set r random(0, 4294967295)
\set d random(0, 65535)
SELECT lpad(to_hex(:r), 8, '0') || '-0000-0000-0000-000000000000' AS low,
       'ffffffff-ffff-4' || lpad(to_hex(:client_id % 4096), 3, '0') AS mine,
       lpad(to_hex(:d), 4, '0') AS at \gset
SELECT coalesce((SELECT id::text FROM public.users WHERE id >= ':low' AND id < 'ffffffff-ffff-0000-0000-000000000000'
                         AND (hashtext(id::text) & 2147483647) % :load_clients = :client_id ORDER BY id LIMIT 1),
                (SELECT id::text FROM public.users WHERE id < 'ffffffff-ffff-0000-0000-000000000000'
                         AND (hashtext(id::text) & 2147483647) % :load_clients = :client_id ORDER BY id LIMIT 1),
                '') AS uid \gset
SELECT (':uid' <> '')::int AS has_uid \gset
\if :has_uid
\else
SELECT id::text AS uid FROM public.users ORDER BY id LIMIT 1 \gset
\set action 1
\endif
\if :action <= 50
SELECT id, email, name, created_at FROM public.users WHERE id = ':uid';
SELECT id, title, created_at FROM public.journal_entries WHERE user_id = ':uid';
SELECT id, name FROM public.tags WHERE user_id = ':uid';
\elif :action <= 70
UPDATE public.users SET name = name, updated_at = updated_at WHERE id = ':uid';
UPDATE public.journal_entries SET title = title WHERE user_id = ':uid';
\elif :action <= 90
BEGIN;
INSERT INTO public.users (id, email, name)
VALUES ((':mine-' || substr(gen_random_uuid()::text, 20))::uuid,
        'load-' || md5(random()::text) || '@rehearsal.invalid', 'Load O''Test');
INSERT INTO public.journal_entries (id, user_id, title, body)
VALUES ((':mine-' || substr(gen_random_uuid()::text, 20))::uuid, ':uid', 'rehearsal load', 'written by the load');
INSERT INTO public.tags (id, user_id, name)
VALUES ((':mine-' || substr(gen_random_uuid()::text, 20))::uuid, ':uid', 'rehearsal load ' || md5(random()::text));
INSERT INTO public.reminders (id, user_id, remind_at, note)
VALUES ((':mine-' || substr(gen_random_uuid()::text, 20))::uuid, ':uid', now() + interval '1 day', 'rehearsal load');
COMMIT;
\else
BEGIN;
DELETE FROM public.journal_entries WHERE id = coalesce(
  (SELECT id FROM public.journal_entries WHERE id >= ':mine-:at-000000000000' AND id <= ':mine-ffff-ffffffffffff' AND title = 'rehearsal load' ORDER BY id LIMIT 1),
  (SELECT id FROM public.journal_entries WHERE id >= ':mine-0000-000000000000' AND id <= ':mine-ffff-ffffffffffff' AND title = 'rehearsal load' ORDER BY id LIMIT 1));
DELETE FROM public.tags WHERE id = coalesce(
  (SELECT id FROM public.tags WHERE id >= ':mine-:at-000000000000' AND id <= ':mine-ffff-ffffffffffff' AND name LIKE 'rehearsal load %' ORDER BY id LIMIT 1),
  (SELECT id FROM public.tags WHERE id >= ':mine-0000-000000000000' AND id <= ':mine-ffff-ffffffffffff' AND name LIKE 'rehearsal load %' ORDER BY id LIMIT 1));
DELETE FROM public.reminders WHERE id = coalesce(
  (SELECT id FROM public.reminders WHERE id >= ':mine-:at-000000000000' AND id <= ':mine-ffff-ffffffffffff' AND note = 'rehearsal load' ORDER BY id LIMIT 1),
  (SELECT id FROM public.reminders WHERE id >= ':mine-0000-000000000000' AND id <= ':mine-ffff-ffffffffffff' AND note = 'rehearsal load' ORDER BY id LIMIT 1));
DELETE FROM public.users WHERE id = coalesce(
  (SELECT id FROM public.users WHERE id >= ':mine-:at-000000000000' AND id <= ':mine-ffff-ffffffffffff' AND email LIKE '%@rehearsal.invalid' ORDER BY id LIMIT 1),
  (SELECT id FROM public.users WHERE id >= ':mine-0000-000000000000' AND id <= ':mine-ffff-ffffffffffff' AND email LIKE '%@rehearsal.invalid' ORDER BY id LIMIT 1));
COMMIT;
\endif
