-- The signed-in user's Commerce7 role (issue 27, the Report extension "Who is signed in"): the
-- `role` of Commerce7's `GET /account/user` answer at sign-in, refreshed when the same user
-- reopens Libero. NULL when none was sent and for older sessions (the report fails closed). The
-- same column and check as PostgreSQL's migration 011.
ALTER TABLE app_sessions ADD COLUMN user_role TEXT CHECK (length(user_role) BETWEEN 1 AND 100);
