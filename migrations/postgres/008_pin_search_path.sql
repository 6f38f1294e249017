-- The SECURITY DEFINER functions run with their owner's rights, so nothing the calling role can
-- create may be resolved in them (issue 26, item 8). Migrations 005 and 007 pinned their
-- search_path to `public, pg_temp`; a role that may create objects in `public` (the default
-- before PostgreSQL 15) could then shadow an unqualified name — an operator, a function like
-- now() — with its own and have it run as the owner. Now only the system catalog is searched
-- (pg_catalog first, pg_temp last, where nothing may shadow it), and every table is named with
-- its schema. The bodies and the behaviour are those of 005 and 007; applied migrations are never
-- edited (their checksums are recorded), hence this one.
--
-- CREATE OR REPLACE keeps each function's owner, grants and triggers; EXECUTE stays revoked from
-- PUBLIC (restated below), and on Supabase from anon and authenticated (005). The functions are
-- named as 005 and 007 named them, so these replace exactly those.

CREATE OR REPLACE FUNCTION cleanup_expired_app_sessions(idle_timeout INTERVAL DEFAULT INTERVAL '1 hour')
RETURNS INTEGER
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deleted_count INTEGER;
BEGIN
    DELETE FROM public.app_sessions
     WHERE expires_at < pg_catalog.now()
        OR (idle_timeout > INTERVAL '0' AND last_activity_at <= pg_catalog.now() - idle_timeout);
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    RETURN deleted_count;
END;
$$;
REVOKE EXECUTE ON FUNCTION cleanup_expired_app_sessions(INTERVAL) FROM PUBLIC;

CREATE OR REPLACE FUNCTION app_sessions_installed_client()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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

CREATE OR REPLACE FUNCTION clients_end_sessions()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
REVOKE EXECUTE ON FUNCTION clients_end_sessions() FROM PUBLIC;
