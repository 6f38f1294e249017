-- sqlx keeps its bookkeeping in public._sqlx_migrations. On Supabase every table in `public` is
-- reachable through the REST API unless row level security is on; with RLS and no policy,
-- anon/authenticated can neither read nor rewrite it (a rewritten checksum would stop start-up).
-- `supabase db push` does not create that table, hence the guard.
DO $$
BEGIN
    IF to_regclass('public._sqlx_migrations') IS NOT NULL THEN
        ALTER TABLE public._sqlx_migrations ENABLE ROW LEVEL SECURITY;
    END IF;
END
$$;
