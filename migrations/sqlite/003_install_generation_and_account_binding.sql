-- A session belongs to one installation of its tenant and to the one Commerce7 account token it
-- was verified with (issue 7, items 1 and 2).

-- Incremented only when an uninstalled tenant is installed again; copied onto each session at
-- sign-in; a session is valid only while the two are equal.
ALTER TABLE clients ADD COLUMN install_generation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE app_sessions ADD COLUMN install_generation INTEGER NOT NULL DEFAULT 1;

-- SHA-256 (hex) of the account token the session was verified with: the fast path is taken only
-- with that same token. NULL on older sessions: their next sign-in goes to Commerce7 once.
ALTER TABLE app_sessions ADD COLUMN account_token_hash TEXT;

-- The generation replaces "a session older than its client's installed_at is dead": remove the
-- rows that rule had already condemned, so that the change of rule revives none of them.
DELETE FROM app_sessions
 WHERE EXISTS (
     SELECT 1 FROM clients c
      WHERE c.id = app_sessions.client_id
        AND (c.uninstalled_at IS NOT NULL OR app_sessions.created_at < c.installed_at)
 );
