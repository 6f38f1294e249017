-- A session row carries all the guard needs (issue 10): its tenant, and the rule that it exists
-- only while its client is installed at the session's install generation — kept by the database
-- itself, so the guard's lookup reads one row by its primary key instead of joining `clients` on
-- every signed-in request. The same two triggers as on PostgreSQL (its migration 007 explains
-- them); SQLite runs one writer at a time, so the check needs no lock. Unlike PostgreSQL's, the
-- check cannot fill in a missing tenant_id (SQLite triggers cannot change NEW): a release from
-- before this migration cannot sign anyone in on a migrated file — stop it first (SQLite files
-- are for development and one instance).

ALTER TABLE app_sessions ADD COLUMN tenant_id TEXT NOT NULL DEFAULT '';
-- The rows the old rule was already refusing (and any without a client): dead before, deleted
-- now, so that none revives — and before the copy of tenant_id, which needs the client.
DELETE FROM app_sessions
 WHERE NOT EXISTS (
     SELECT 1 FROM clients c
      WHERE c.id = app_sessions.client_id
        AND c.uninstalled_at IS NULL AND c.install_generation = app_sessions.install_generation
 );
UPDATE app_sessions SET tenant_id = (SELECT c.tenant_id FROM clients c WHERE c.id = app_sessions.client_id);

CREATE TRIGGER IF NOT EXISTS app_sessions_installed_client_insert
BEFORE INSERT ON app_sessions
WHEN NOT EXISTS (
    SELECT 1 FROM clients c
     WHERE c.id = NEW.client_id AND c.tenant_id = NEW.tenant_id
       AND c.uninstalled_at IS NULL AND c.install_generation = NEW.install_generation
)
BEGIN
    SELECT RAISE(ABORT, 'app_sessions_installed_client: the client is not installed at the session''s generation');
END;

CREATE TRIGGER IF NOT EXISTS app_sessions_installed_client_update
BEFORE UPDATE OF client_id, tenant_id, install_generation ON app_sessions
WHEN NOT EXISTS (
    SELECT 1 FROM clients c
     WHERE c.id = NEW.client_id AND c.tenant_id = NEW.tenant_id
       AND c.uninstalled_at IS NULL AND c.install_generation = NEW.install_generation
)
BEGIN
    SELECT RAISE(ABORT, 'app_sessions_installed_client: the client is not installed at the session''s generation');
END;

CREATE TRIGGER IF NOT EXISTS clients_end_sessions
AFTER UPDATE OF uninstalled_at, install_generation, tenant_id ON clients
WHEN NEW.uninstalled_at IS NOT NULL
  OR NEW.install_generation IS NOT OLD.install_generation
  OR NEW.tenant_id IS NOT OLD.tenant_id
BEGIN
    DELETE FROM app_sessions
     WHERE client_id = NEW.id
       AND (NEW.uninstalled_at IS NOT NULL
            OR install_generation <> NEW.install_generation
            OR tenant_id <> NEW.tenant_id);
END;
