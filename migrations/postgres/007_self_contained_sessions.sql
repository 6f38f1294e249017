-- A session row carries all the guard needs (issue 10): its tenant, and the rule that it exists
-- only while its client is installed at the session's install generation — kept by the database
-- itself, so the guard's lookup reads one row by its primary key instead of joining `clients` on
-- every signed-in request.
--
-- Before: the lookup joined the client and judged `uninstalled_at` and the generations on every
-- request. Now two triggers keep the same rule as an invariant of the table:
--  * a session row can be written (inserted, or moved to another client, tenant or generation)
--    only for a client that is installed at that generation, with that tenant id; the check
--    holds the client row FOR SHARE, so an uninstall or reinstall running at the same time waits
--    for the sign-in and then ends its session (below), or went first and the sign-in fails;
--  * any change of a client that uninstalls it, changes its generation or its tenant id deletes
--    the sessions it ends, in the same transaction — whoever makes it (the callbacks, a reinstall,
--    or an operator's UPDATE by hand).

ALTER TABLE app_sessions ADD COLUMN IF NOT EXISTS tenant_id TEXT;
UPDATE app_sessions s SET tenant_id = c.tenant_id FROM clients c WHERE c.id = s.client_id;
-- The rows the old rule was already refusing: dead before, deleted now, so that none revives.
DELETE FROM app_sessions s
 USING clients c
 WHERE c.id = s.client_id
   AND (c.uninstalled_at IS NOT NULL OR c.install_generation <> s.install_generation);
ALTER TABLE app_sessions ALTER COLUMN tenant_id SET NOT NULL;

-- SECURITY DEFINER (with a pinned search_path, and no EXECUTE for PUBLIC), as
-- cleanup_expired_app_sessions: the check and the deletes below must see and reach every row
-- whatever role writes, past row level security. A row written without tenant_id (a release from
-- before this migration, during a rolling deploy) gets its client's.
CREATE OR REPLACE FUNCTION app_sessions_installed_client()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    client_tenant TEXT;
BEGIN
    SELECT c.tenant_id INTO client_tenant FROM public.clients c
     WHERE c.id = NEW.client_id
       AND c.uninstalled_at IS NULL AND c.install_generation = NEW.install_generation
       FOR SHARE;
    -- A NULL tenant_id compares as unknown here: it passes, and is filled in below.
    IF NOT FOUND OR NEW.tenant_id <> client_tenant THEN
        RAISE EXCEPTION 'app_sessions_installed_client: client % (tenant %) is not installed at generation %',
            NEW.client_id, NEW.tenant_id, NEW.install_generation
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'app_sessions_installed_client';
    END IF;
    NEW.tenant_id := client_tenant;
    RETURN NEW;
END;
$$;
REVOKE EXECUTE ON FUNCTION app_sessions_installed_client() FROM PUBLIC;

DROP TRIGGER IF EXISTS app_sessions_installed_client ON app_sessions;
CREATE TRIGGER app_sessions_installed_client
    BEFORE INSERT OR UPDATE OF client_id, tenant_id, install_generation ON app_sessions
    FOR EACH ROW EXECUTE FUNCTION app_sessions_installed_client();

CREATE OR REPLACE FUNCTION clients_end_sessions()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    DELETE FROM public.app_sessions s
     WHERE s.client_id = NEW.id
       AND (NEW.uninstalled_at IS NOT NULL
            OR s.install_generation <> NEW.install_generation
            OR s.tenant_id <> NEW.tenant_id);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS clients_end_sessions ON clients;
CREATE TRIGGER clients_end_sessions
    AFTER UPDATE OF uninstalled_at, install_generation, tenant_id ON clients
    FOR EACH ROW
    WHEN (NEW.uninstalled_at IS NOT NULL
          OR NEW.install_generation IS DISTINCT FROM OLD.install_generation
          OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id)
    EXECUTE FUNCTION clients_end_sessions();
REVOKE EXECUTE ON FUNCTION clients_end_sessions() FROM PUBLIC;
