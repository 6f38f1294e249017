-- The organisation details Commerce7 sends with the install callback (issue 27, item 5), besides
-- `organization-name` (kept in org_name as before): `organization-address`,
-- `organization-website` and `organization-phone`, each optional. A copy of what Commerce7
-- holds, written by every install callback — a reinstall replaces all three with what it carries,
-- and one it leaves out becomes NULL — and shown read-only on the settings page. The same columns
-- and checks as PostgreSQL's migration 010: text of 1 to 500 characters (the parser trims it),
-- or NULL.
ALTER TABLE clients ADD COLUMN org_address TEXT CHECK (length(org_address) BETWEEN 1 AND 500);
ALTER TABLE clients ADD COLUMN org_website TEXT CHECK (length(org_website) BETWEEN 1 AND 500);
ALTER TABLE clients ADD COLUMN org_phone TEXT CHECK (length(org_phone) BETWEEN 1 AND 500);
