-- Moderation: each server's moderation settings, its prompt blocklist, strikes
-- (provider moderation refusals), member blocks (the one home of blocks: the
-- money feature's block/unblock commands use it too), approval requests with
-- their single decision, and the append-only audit log of who did what.
-- Defaults live in ``ModerationSettings`` (storage/moderation.py), not here:
-- a server without a row has the defaults, and a row always holds every value.

CREATE TABLE moderation_settings (
    guild_id                INTEGER PRIMARY KEY,
    allowed_channel_ids     TEXT NOT NULL CHECK (json_valid(allowed_channel_ids)),
    allowed_role_ids        TEXT NOT NULL CHECK (json_valid(allowed_role_ids)),
    moderator_role_id       INTEGER,
    log_channel_id          INTEGER,
    approval_mode           TEXT NOT NULL CHECK (approval_mode IN ('off', 'new_members', 'everyone')),
    new_member_days         INTEGER NOT NULL CHECK (new_member_days >= 0),
    trusted_role_ids        TEXT NOT NULL CHECK (json_valid(trusted_role_ids)),
    approval_expiry_seconds INTEGER NOT NULL CHECK (approval_expiry_seconds > 0),
    strike_threshold        INTEGER NOT NULL CHECK (strike_threshold >= 1),
    strike_window_seconds   INTEGER NOT NULL CHECK (strike_window_seconds > 0),
    updated_at              REAL NOT NULL
);

-- Words and phrases are matched on the folded prompt at word boundaries;
-- ``regex`` entries are patterns checked for safety before they are stored.
CREATE TABLE blocklist (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('word', 'phrase', 'regex')),
    text        TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 200),
    label       TEXT NOT NULL DEFAULT '',
    added_by    INTEGER,
    created_at  REAL NOT NULL,
    UNIQUE (guild_id, kind, text)
);

-- One strike per job at most, so a re-processed failure never counts twice.
CREATE TABLE strikes (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    job_id      INTEGER REFERENCES jobs (id),
    rule        TEXT NOT NULL,
    created_at  REAL NOT NULL
);

CREATE INDEX strikes_member ON strikes (guild_id, user_id, created_at);
CREATE UNIQUE INDEX strikes_one_per_job ON strikes (job_id) WHERE job_id IS NOT NULL;

-- A block is lifted by setting ``lifted_at``, never deleted, so the history
-- stays; ``until`` NULL means until lifted. ``blocked_by`` NULL is the bot
-- itself (the strike threshold). At most one unlifted row per member.
CREATE TABLE blocks (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    blocked_by  INTEGER,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    until       REAL CHECK (until IS NULL OR until > created_at),
    lifted_by   INTEGER,
    lifted_at   REAL
);

CREATE UNIQUE INDEX blocks_one_open ON blocks (guild_id, user_id) WHERE lifted_at IS NULL;

-- The decision is written once: ``UPDATE … WHERE decision IS NULL``; the
-- first moderator wins and a second one reads who was first.
CREATE TABLE approvals (
    job_id                  INTEGER PRIMARY KEY REFERENCES jobs (id),
    guild_id                INTEGER NOT NULL,
    user_id                 INTEGER NOT NULL,
    mod_message_channel_id  INTEGER,
    mod_message_id          INTEGER,
    requested_at            REAL NOT NULL,
    expires_at              REAL NOT NULL,
    decided_by              INTEGER,
    decision                TEXT CHECK (decision IS NULL OR decision IN
                                ('approved', 'rejected', 'expired', 'cancelled')),
    reason                  TEXT NOT NULL DEFAULT '',
    decided_at              REAL,
    CHECK ((decision IS NULL) = (decided_at IS NULL))
);

CREATE INDEX approvals_pending ON approvals (expires_at) WHERE decision IS NULL;

-- Append-only: rows are never updated or deleted (triggers below refuse it).
-- ``actor_id`` NULL is the bot itself (an expiry, a block by the strike threshold).
CREATE TABLE audit (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    actor_id        INTEGER,
    action          TEXT NOT NULL CHECK (action IN (
                        'approve', 'reject', 'expire', 'block', 'unblock', 'strike', 'grant',
                        'reset', 'setting_changed', 'video_deleted', 'cancel')),
    job_id          INTEGER,
    target_user_id  INTEGER,
    details         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    created_at      REAL NOT NULL
);

CREATE INDEX audit_guild ON audit (guild_id, action, id);
CREATE INDEX audit_target ON audit (guild_id, target_user_id, id);
CREATE INDEX audit_actor ON audit (guild_id, actor_id, id);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
