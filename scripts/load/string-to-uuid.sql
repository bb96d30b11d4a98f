-- scripts/load/string-to-uuid.sql: the application during every phase of string-to-uuid, played by
-- scripts/rehearse --with-load (pgbench, one transaction per run). Its SQL works whether users.id
-- and the foreign keys to it are varchar(36) or uuid: ids come as quoted literals or uuid values.

-- Each run picks a random existing user (not one it created), then by weight reads it with its
-- journal entries and tags (50), updates it and its entries with the values they have (20: row
-- locks and triggers, no change), creates a user and an entry, a tag and a reminder of the existing user (20), or deletes
-- one of each that it created (10). What it creates has ids 'ffffffff-ffff-...' and a marker (email
-- @rehearsal.invalid, 'rehearsal load'); string-to-uuid-cleanup.sql removes it.
\set action random(1, 100)
\set r random(0, 4294967295)
\set d random(0, 4095)
SELECT lpad(to_hex(:r), 8, '0') || '-0000-0000-0000-000000000000' AS low,
       'ffffffff-ffff-4' || lpad(to_hex(:d), 3, '0') || '-8000-000000000000' AS mine \gset
-- never one the load created: another client may delete it between this pick and the entry written
-- for it (a foreign key violation of the load's own making, not the migration's)
SELECT coalesce((SELECT id FROM public.users WHERE id >= ':low' AND id < 'ffffffff-ffff-0000-0000-000000000000'
                 ORDER BY id LIMIT 1),
                (SELECT id FROM public.users ORDER BY id LIMIT 1)) AS uid \gset
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
VALUES (('ffffffff-ffff-' || substr(gen_random_uuid()::text, 15))::uuid,
        'load-' || md5(random()::text) || '@rehearsal.invalid', 'Load O''Test');
INSERT INTO public.journal_entries (id, user_id, title, body)
VALUES (('ffffffff-ffff-' || substr(gen_random_uuid()::text, 15))::uuid, ':uid', 'rehearsal load', 'written by the load');
INSERT INTO public.tags (id, user_id, name)
VALUES (('ffffffff-ffff-' || substr(gen_random_uuid()::text, 15))::uuid, ':uid', 'rehearsal load ' || md5(random()::text));
INSERT INTO public.reminders (id, user_id, remind_at, note)
VALUES (('ffffffff-ffff-' || substr(gen_random_uuid()::text, 15))::uuid, ':uid', now() + interval '1 day', 'rehearsal load');
COMMIT;
\else
BEGIN;
DELETE FROM public.journal_entries WHERE id = coalesce(
  (SELECT id FROM public.journal_entries WHERE id >= ':mine' AND title = 'rehearsal load' ORDER BY id LIMIT 1),
  (SELECT id FROM public.journal_entries WHERE id >= 'ffffffff-ffff-0000-0000-000000000000' AND title = 'rehearsal load' ORDER BY id LIMIT 1));
DELETE FROM public.tags WHERE id = coalesce(
  (SELECT id FROM public.tags WHERE id >= ':mine' AND name LIKE 'rehearsal load %' ORDER BY id LIMIT 1),
  (SELECT id FROM public.tags WHERE id >= 'ffffffff-ffff-0000-0000-000000000000' AND name LIKE 'rehearsal load %' ORDER BY id LIMIT 1));
DELETE FROM public.reminders WHERE id = coalesce(
  (SELECT id FROM public.reminders WHERE id >= ':mine' AND note = 'rehearsal load' ORDER BY id LIMIT 1),
  (SELECT id FROM public.reminders WHERE id >= 'ffffffff-ffff-0000-0000-000000000000' AND note = 'rehearsal load' ORDER BY id LIMIT 1));
DELETE FROM public.users WHERE id = coalesce(
  (SELECT id FROM public.users WHERE id >= ':mine' AND email LIKE '%@rehearsal.invalid' ORDER BY id LIMIT 1),
  (SELECT id FROM public.users WHERE id >= 'ffffffff-ffff-0000-0000-000000000000' AND email LIKE '%@rehearsal.invalid' ORDER BY id LIMIT 1));
COMMIT;
\endif
