-- The signed-in user's Commerce7 role (issue 27, the Report extension "Who is signed in"): the
-- `role` Commerce7's `GET /account/user` answered at sign-in (e.g. `Admin Owner`), written when a
-- session is created and again when the same user reopens Libero (a new token, the row kept).
-- NULL when Commerce7 sent none (older answers) and for every session from before this column:
-- the report is shown only to `Admin Owner` and `Admin`, so a missing or unknown role fails
-- closed, and a demotion in Commerce7 takes effect at the user's next open. Nullable, no default:
-- adding it rewrites no rows.
ALTER TABLE app_sessions ADD COLUMN IF NOT EXISTS user_role TEXT
    CONSTRAINT app_sessions_user_role_length CHECK (char_length(user_role) BETWEEN 1 AND 100);

COMMENT ON COLUMN app_sessions.user_role IS 'Commerce7 role of the user at sign-in or at their latest open (NULL: none sent); only Admin Owner and Admin see the sessions report.';
