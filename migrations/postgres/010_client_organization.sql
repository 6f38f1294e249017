-- The organisation details Commerce7 sends with the install callback (issue 27, item 5), besides
-- `organization-name` (kept in org_name as before): `organization-address`,
-- `organization-website` and `organization-phone`, each optional. They are a copy of what
-- Commerce7 holds, written by every install callback — a reinstall replaces all three with what
-- it carries, and one it leaves out becomes NULL — and shown read-only ("from Commerce7") on the
-- settings page; the merchant's own settings stay in `settings`, which no install touches.
-- Nullable and without a default: adding them rewrites no rows. The parser trims each value and
-- keeps at most 500 characters; the CHECKs hold any other writer to the same (NULL passes).
ALTER TABLE clients ADD COLUMN IF NOT EXISTS org_address TEXT
    CONSTRAINT clients_org_address_length CHECK (char_length(org_address) BETWEEN 1 AND 500);
ALTER TABLE clients ADD COLUMN IF NOT EXISTS org_website TEXT
    CONSTRAINT clients_org_website_length CHECK (char_length(org_website) BETWEEN 1 AND 500);
ALTER TABLE clients ADD COLUMN IF NOT EXISTS org_phone TEXT
    CONSTRAINT clients_org_phone_length CHECK (char_length(org_phone) BETWEEN 1 AND 500);

COMMENT ON COLUMN clients.org_address IS 'organization-address of the latest install callback (NULL when it sent none); read-only in Libero.';
COMMENT ON COLUMN clients.org_website IS 'organization-website of the latest install callback (NULL when it sent none); read-only in Libero.';
COMMENT ON COLUMN clients.org_phone IS 'organization-phone of the latest install callback (NULL when it sent none); read-only in Libero.';
