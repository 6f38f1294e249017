-- Handoff codes (issue 8): the sign-in's 303 (and a tab's resume) carries a random, single-use
-- code valid for 60 s instead of relying on the cookie, which a browser may not keep in a
-- cross-site iframe. Only the code's SHA-256 (hex) is stored, on the session row it opens; the
-- first redemption clears it.
ALTER TABLE app_sessions ADD COLUMN handoff_hash TEXT;
ALTER TABLE app_sessions ADD COLUMN handoff_expires_at TEXT
    CHECK (handoff_expires_at IS NULL OR handoff_expires_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*+00:00');

-- Redemption looks a code up by its hash; almost every row has none.
CREATE UNIQUE INDEX IF NOT EXISTS app_sessions_handoff_hash_idx
    ON app_sessions (handoff_hash) WHERE handoff_hash IS NOT NULL;
