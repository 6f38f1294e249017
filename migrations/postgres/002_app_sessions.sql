-- Database-backed app sessions (see docs in README "Sessions").
CREATE TABLE IF NOT EXISTS app_sessions (
    id                TEXT PRIMARY KEY,
    client_id         UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL,
    user_name         TEXT,
    user_email        TEXT,
    theme             TEXT NOT NULL DEFAULT 'light' CHECK (theme IN ('light', 'dark')),
    ip_address        TEXT,
    user_agent        TEXT,
    data              JSONB NOT NULL DEFAULT '{}'::jsonb,
    last_activity_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at        TIMESTAMPTZ NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

COMMENT ON COLUMN app_sessions.id IS
    'SHA-256 (hex) of the token in the __libero_session cookie, never the token itself: a leaked table or backup cannot be replayed as sessions.';

CREATE INDEX IF NOT EXISTS app_sessions_client_id_idx ON app_sessions (client_id);
CREATE INDEX IF NOT EXISTS app_sessions_user_id_idx ON app_sessions (user_id);
CREATE INDEX IF NOT EXISTS app_sessions_expires_at_idx ON app_sessions (expires_at);
CREATE INDEX IF NOT EXISTS app_sessions_last_activity_at_idx ON app_sessions (last_activity_at);

-- No policy for anon/authenticated: Supabase's REST API cannot read sessions. The table owner
-- (the role the app connects as) bypasses RLS.
ALTER TABLE app_sessions ENABLE ROW LEVEL SECURITY;

-- Deletes expired sessions and returns how many (used by pg_cron on Supabase).
CREATE OR REPLACE FUNCTION cleanup_expired_app_sessions()
RETURNS INTEGER
LANGUAGE plpgsql
AS $$
DECLARE
    deleted_count INTEGER;
BEGIN
    DELETE FROM app_sessions WHERE expires_at < now();
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    RETURN deleted_count;
END;
$$;
