-- A session belongs to one installation of its tenant and to the one Commerce7 account token it
-- was verified with (issue 7, items 1, 2 and 11).

-- Incremented only when an uninstalled tenant is installed again (a repeated install callback of
-- an installed tenant leaves it alone). Copied onto each session at sign-in; a session is valid
-- only while the two are equal. BIGINT: both databases decode it as a 64-bit integer.
ALTER TABLE clients ADD COLUMN IF NOT EXISTS install_generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE app_sessions ADD COLUMN IF NOT EXISTS install_generation BIGINT NOT NULL DEFAULT 1;

-- SHA-256 (hex) of the account token the session was verified with: reopening the app takes the
-- fast path (no Commerce7 call) only with that same token. NULL on sessions from before this
-- migration: their next sign-in is verified with Commerce7 once.
ALTER TABLE app_sessions ADD COLUMN IF NOT EXISTS account_token_hash TEXT;

-- The generation replaces "a session older than its client's installed_at is dead": remove the
-- rows that rule had already condemned, so that the change of rule revives none of them.
DELETE FROM app_sessions s
 USING clients c
 WHERE c.id = s.client_id
   AND (c.uninstalled_at IS NOT NULL OR s.created_at < c.installed_at);

-- One clock: every timestamp is written by the app (`db::now()`), none falls back to the
-- database's clock. Without defaults, an INSERT that forgets one fails instead of mixing clocks.
ALTER TABLE clients
    ALTER COLUMN installed_at DROP DEFAULT,
    ALTER COLUMN created_at DROP DEFAULT,
    ALTER COLUMN updated_at DROP DEFAULT;
ALTER TABLE app_sessions
    ALTER COLUMN last_activity_at DROP DEFAULT,
    ALTER COLUMN created_at DROP DEFAULT,
    ALTER COLUMN updated_at DROP DEFAULT;
