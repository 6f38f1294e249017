-- One row per Commerce7 tenant that installed Libero.
CREATE TABLE IF NOT EXISTS clients (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       TEXT NOT NULL UNIQUE,
    org_name        TEXT,
    org_contact     TEXT,
    user_id         TEXT,
    user_email      TEXT,
    settings        JSONB NOT NULL DEFAULT '{}'::jsonb,
    install_data    JSONB NOT NULL DEFAULT '{}'::jsonb,
    installed_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    uninstalled_at  TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

COMMENT ON COLUMN clients.uninstalled_at IS 'NULL while installed; set by the uninstall callback.';

ALTER TABLE clients ENABLE ROW LEVEL SECURITY;
