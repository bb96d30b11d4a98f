-- sql/state.sql: phasemig's own state, created by phase1 apply and kept by every
-- rollback so the audit trail survives: the migration_log table, the
-- migration_backup schema and the registry of objects phasemig created.
CREATE SCHEMA IF NOT EXISTS migration_backup;

CREATE TABLE IF NOT EXISTS public.migration_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       uuid        NOT NULL,
    plan         text        NOT NULL,
    phase        smallint    NOT NULL CHECK (phase BETWEEN 1 AND 3),
    operation    text        NOT NULL,
    status       text        NOT NULL
                 CONSTRAINT migration_log_status_check
                 CHECK (status IN ('running', 'done', 'failed', 'refused', 'interrupted', 'declined')),
    rows_done    bigint      NOT NULL DEFAULT 0,
    rows_total   bigint,
    last_key     text,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    db_user      text        NOT NULL DEFAULT current_user,
    client       text,
    tool_version text        NOT NULL,
    message      text,
    metadata     jsonb       NOT NULL DEFAULT '{}'
);
-- A migration_log made by an older phasemig lacks 'interrupted' (a run stopped
-- by a signal, or one whose process ended without recording its outcome) or
-- 'declined' (the operator answered no to a confirmation): the list is
-- replaced by the current one, in place.
DO $upgrade$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                   WHERE conrelid = 'public.migration_log'::regclass
                     AND conname = 'migration_log_status_check'
                     AND pg_catalog.pg_get_constraintdef(oid) LIKE '%declined%') THEN
        ALTER TABLE public.migration_log
            DROP CONSTRAINT IF EXISTS migration_log_status_check,
            ADD CONSTRAINT migration_log_status_check
                CHECK (status IN ('running', 'done', 'failed', 'refused', 'interrupted', 'declined'));
    END IF;
END
$upgrade$;
CREATE INDEX IF NOT EXISTS migration_log_plan_phase_idx
    ON public.migration_log (plan, phase, operation, id);

-- What phasemig created, so a rollback removes exactly that and nothing the
-- operator had before (a column that already existed is never dropped).
CREATE TABLE IF NOT EXISTS migration_backup.phasemig_objects (
    plan       text        NOT NULL,
    kind       text        NOT NULL,
    name       text        NOT NULL,
    phase      smallint    NOT NULL,
    detail     jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (plan, kind, name)
);

-- The operator's controls of a running phase2, one row per plan, set by
-- "phase2 throttle" from another terminal and read by every batch loop
-- between batches (a NULL leaves the run's own setting).  A row belongs to
-- one run: run_id's, or with next_run the next run that walks batches,
-- which takes it as its own; no other run reads it.
CREATE TABLE IF NOT EXISTS migration_backup.phasemig_control (
    plan       text        PRIMARY KEY,
    paused     boolean     NOT NULL DEFAULT false,
    sleep_ms   integer     CHECK (sleep_ms BETWEEN 0 AND 600000),
    batch_size integer     CHECK (batch_size BETWEEN 1 AND 1000000),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_by text,
    run_id     uuid,
    next_run   boolean     NOT NULL DEFAULT false,
    paused_at  timestamptz
);
-- A phasemig_control made by an older phasemig lacks the run a row belongs
-- to: its rows (which applied to every later run) are left to no run.  Only
-- then altered: "phase2 throttle" runs this file while a run reads the table.
DO $upgrade$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                   WHERE attrelid = 'migration_backup.phasemig_control'::regclass
                     AND attname = 'paused_at' AND NOT attisdropped) THEN
        ALTER TABLE migration_backup.phasemig_control
            ADD COLUMN IF NOT EXISTS run_id uuid,
            ADD COLUMN IF NOT EXISTS next_run boolean NOT NULL DEFAULT false,
            ADD COLUMN IF NOT EXISTS paused_at timestamptz;
    END IF;
END
$upgrade$;
