-- Where results go (issue 15, item 2). A server chooses the channel (default) or a thread
-- per job started from its card; a member chooses how they are told: a mention (default),
-- a direct message, or nothing. Kept in tables of their own, beside the money settings.

CREATE TABLE guild_delivery (
    guild_id    INTEGER PRIMARY KEY,
    results_in  TEXT NOT NULL DEFAULT 'channel' CHECK (results_in IN ('channel', 'thread')),
    updated_by  INTEGER,
    updated_at  REAL NOT NULL
);

CREATE TABLE member_settings (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    notify      TEXT NOT NULL DEFAULT 'mention' CHECK (notify IN ('mention', 'dm', 'quiet')),
    updated_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- Each job keeps the member's choice of the moment it was made, and its thread once the
-- card has one (results are posted there).
ALTER TABLE jobs ADD COLUMN notify TEXT NOT NULL DEFAULT 'mention';
ALTER TABLE jobs ADD COLUMN thread_id INTEGER;
