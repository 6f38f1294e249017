-- One row per Commerce7 tenant that installed Libero.
-- Timestamps are RFC 3339 UTC text written by the app; ids are UUID text.
CREATE TABLE IF NOT EXISTS clients (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL UNIQUE,
    org_name        TEXT,
    org_contact     TEXT,
    user_id         TEXT,
    user_email      TEXT,
    settings        TEXT NOT NULL DEFAULT '{}',
    install_data    TEXT NOT NULL DEFAULT '{}',
    installed_at    TEXT NOT NULL,
    uninstalled_at  TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
