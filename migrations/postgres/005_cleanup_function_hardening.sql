-- cleanup_expired_app_sessions: also deletes idle rows, runs with a pinned search_path, and may
-- be executed only by its owner and the roles it is granted to (issue 7, items 5 and 10).
--
-- The zero-argument function is replaced by one whose argument has a default: keeping both would
-- make `SELECT cleanup_expired_app_sessions()` ambiguous. The zero-argument call keeps working.
DROP FUNCTION IF EXISTS cleanup_expired_app_sessions();

-- Deletes sessions past expires_at, and sessions unused for idle_timeout or longer (the server's
-- SESSION_IDLE_TIMEOUT; default 1 hour; NULL or '0' turns the idle rule off). Returns how many.
-- Compares with the database's clock (now()): keep it in sync (NTP) with the app's.
--
-- SECURITY DEFINER so that the role pg_cron runs the job as needs only EXECUTE (granted by hand:
-- see docs/operations.md), not DELETE on app_sessions past its row level security. Hence the
-- pinned search_path and no EXECUTE for PUBLIC.
CREATE OR REPLACE FUNCTION cleanup_expired_app_sessions(idle_timeout INTERVAL DEFAULT INTERVAL '1 hour')
RETURNS INTEGER
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    deleted_count INTEGER;
BEGIN
    DELETE FROM public.app_sessions
     WHERE expires_at < now()
        OR (idle_timeout > INTERVAL '0' AND last_activity_at <= now() - idle_timeout);
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    RETURN deleted_count;
END;
$$;

REVOKE EXECUTE ON FUNCTION cleanup_expired_app_sessions(INTERVAL) FROM PUBLIC;

-- Supabase grants EXECUTE on new functions in `public` to anon and authenticated by default
-- privileges (the REST API could then call it). Plain PostgreSQL has no such roles.
DO $$
DECLARE
    api_role TEXT;
BEGIN
    FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = api_role) THEN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION cleanup_expired_app_sessions(INTERVAL) FROM %I', api_role);
        END IF;
    END LOOP;
END
$$;
