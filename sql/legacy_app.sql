-- sql/legacy_app.sql: the legacy application's schema as it is before any phasemig
-- migration (Clerk ids, UUIDs kept as varchar(36) text). Run once on a fresh database;
-- scripts/gen-data loads it and fills it with test data.

CREATE TABLE public.users (
    id            varchar(36) PRIMARY KEY DEFAULT (gen_random_uuid())::text,
    clerk_user_id varchar(64) CONSTRAINT users_clerk_user_id_key UNIQUE,
    email         varchar(255),
    name          text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz
);

CREATE TABLE public.journal_entries (
    id         varchar(36) PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id    varchar(36) NOT NULL
               CONSTRAINT journal_entries_user_id_fkey
               REFERENCES public.users (id) ON DELETE CASCADE,
    title      text,
    body       text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_entries_user_id_idx ON public.journal_entries (user_id);

CREATE TABLE public.tags (
    id      varchar(36) PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id varchar(36) NOT NULL
            CONSTRAINT tags_user_id_fkey
            REFERENCES public.users (id) ON DELETE CASCADE,
    name    text NOT NULL,
    CONSTRAINT tags_user_id_name_key UNIQUE (user_id, name)
);

-- No index on user_id, and user_id may be NULL: a reminder outlives its user.
CREATE TABLE public.reminders (
    id        varchar(36) PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id   varchar(36)
              CONSTRAINT reminders_user_id_fkey
              REFERENCES public.users (id) ON DELETE SET NULL,
    remind_at timestamptz,
    note      text
);
