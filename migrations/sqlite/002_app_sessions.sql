-- Database-backed app sessions.
-- id: SHA-256 (hex) of the token in the __libero_session cookie, never the token itself: a
-- leaked table or backup cannot be replayed as sessions.
CREATE TABLE IF NOT EXISTS app_sessions (
    id                TEXT PRIMARY KEY NOT NULL,
    client_id         TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL,
    user_name         TEXT,
    user_email        TEXT,
    theme             TEXT NOT NULL DEFAULT 'light' CHECK (theme IN ('light', 'dark')),
    ip_address        TEXT,
    user_agent        TEXT,
    data              TEXT NOT NULL DEFAULT '{}',
    -- Compared as text: only the app's RFC 3339 UTC form ("2026-11-28T09:00:00.123456+00:00") sorts
    -- correctly, so other forms (such as datetime('now')) are refused.
    last_activity_at  TEXT NOT NULL CHECK (last_activity_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*+00:00'),
    expires_at        TEXT NOT NULL CHECK (expires_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*+00:00'),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS app_sessions_client_id_idx ON app_sessions (client_id);
CREATE INDEX IF NOT EXISTS app_sessions_user_id_idx ON app_sessions (user_id);
CREATE INDEX IF NOT EXISTS app_sessions_expires_at_idx ON app_sessions (expires_at);
CREATE INDEX IF NOT EXISTS app_sessions_last_activity_at_idx ON app_sessions (last_activity_at);
