-- Tab-token generations (issue 26, item 5): a tab token names its session row *and* the row's
-- generation when it was minted. *Sign out all other sessions* moves the generation on, which
-- ends every copy of the current session's tab tokens but the one handed to the tab asking.
ALTER TABLE app_sessions ADD COLUMN tab_generation INTEGER NOT NULL DEFAULT 0;
