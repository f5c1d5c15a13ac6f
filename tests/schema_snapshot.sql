CREATE INDEX approvals_pending ON approvals (expires_at) WHERE decision IS NULL;
CREATE INDEX audit_actor ON audit (guild_id, actor_id, id);
CREATE INDEX audit_guild ON audit (guild_id, action, id);
CREATE INDEX audit_target ON audit (guild_id, target_user_id, id);
CREATE UNIQUE INDEX blocks_one_open ON blocks (guild_id, user_id) WHERE lifted_at IS NULL;
CREATE INDEX job_image_refs_hash ON job_image_refs (hash);
CREATE INDEX jobs_delivery_due ON jobs (next_delivery_at) WHERE status = 'succeeded';
CREATE INDEX jobs_guild_time ON jobs (guild_id, created_at);
CREATE INDEX jobs_in_flight ON jobs (guild_id, user_id) WHERE status IN
    ('awaiting_approval', 'queued', 'running', 'submitted', 'submitting', 'succeeded');
CREATE INDEX jobs_member ON jobs (guild_id, user_id, created_at);
CREATE UNIQUE INDEX jobs_one_per_interaction ON jobs (interaction_id)
    WHERE interaction_id IS NOT NULL;
CREATE INDEX jobs_poll_due ON jobs (next_poll_at) WHERE status IN ('submitted', 'running');
CREATE UNIQUE INDEX jobs_provider_task ON jobs (provider, provider_task_id)
    WHERE provider_task_id IS NOT NULL;
CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued';
CREATE INDEX jobs_submitting_lease ON jobs (lease_expires) WHERE status = 'submitting';
CREATE INDEX ledger_guild_time ON ledger (guild_id, kind, created_at, delta);
CREATE INDEX ledger_job ON ledger (job_id, kind);
CREATE INDEX ledger_member ON ledger (guild_id, user_id, period);
CREATE UNIQUE INDEX ledger_one_settlement ON ledger (job_id) WHERE kind IN ('charge', 'refund');
CREATE INDEX strikes_member ON strikes (guild_id, user_id, created_at);
CREATE UNIQUE INDEX strikes_one_per_job ON strikes (job_id) WHERE job_id IS NOT NULL;
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
CREATE TABLE bot_state (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
CREATE TABLE budget_notices (
    guild_id    INTEGER NOT NULL,
    scope       TEXT NOT NULL CHECK (scope IN ('day', 'month')),
    period      TEXT NOT NULL,
    threshold   INTEGER NOT NULL CHECK (threshold IN (80, 100)),
    spent       INTEGER NOT NULL,
    budget      INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, scope, period, threshold)
);
CREATE TABLE guild_costs (
    guild_id    INTEGER NOT NULL,
    model       TEXT NOT NULL,
    resolution  TEXT NOT NULL,
    duration    INTEGER NOT NULL,
    credits     INTEGER NOT NULL CHECK (credits >= 0),
    updated_by  INTEGER,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, model, resolution, duration)
);
CREATE TABLE guild_delivery (
    guild_id    INTEGER PRIMARY KEY,
    results_in  TEXT NOT NULL DEFAULT 'channel' CHECK (results_in IN ('channel', 'thread')),
    updated_by  INTEGER,
    updated_at  REAL NOT NULL
);
CREATE TABLE guild_prices (
    guild_id     INTEGER NOT NULL,
    provider     TEXT NOT NULL,
    model        TEXT NOT NULL,
    resolution   TEXT NOT NULL,
    duration     INTEGER NOT NULL,
    price_micros INTEGER NOT NULL CHECK (price_micros >= 0),
    updated_by   INTEGER,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (guild_id, provider, model, resolution, duration)
);
CREATE TABLE guild_settings (
    guild_id            INTEGER PRIMARY KEY,
    allowance           INTEGER CHECK (allowance IS NULL OR allowance >= 0),
    allowance_period    TEXT CHECK (allowance_period IS NULL OR allowance_period IN ('day', 'week')),
    timezone            TEXT,
    daily_budget        INTEGER CHECK (daily_budget IS NULL OR daily_budget > 0),
    monthly_budget      INTEGER CHECK (monthly_budget IS NULL OR monthly_budget > 0),
    max_jobs_per_member INTEGER CHECK (max_jobs_per_member IS NULL OR max_jobs_per_member >= 1),
    max_jobs_per_guild  INTEGER CHECK (max_jobs_per_guild IS NULL OR max_jobs_per_guild >= 1),
    cooldown_seconds    INTEGER CHECK (cooldown_seconds IS NULL OR cooldown_seconds >= 0),
    notice_channel_id   INTEGER,
    updated_by          INTEGER,
    updated_at          REAL NOT NULL
, daily_money_budget INTEGER
    CHECK (daily_money_budget IS NULL OR daily_money_budget > 0), monthly_money_budget INTEGER
    CHECK (monthly_money_budget IS NULL OR monthly_money_budget > 0));
CREATE TABLE guild_spend (
    guild_id    INTEGER NOT NULL,
    slot        INTEGER NOT NULL,
    credits     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, slot)
);
CREATE TABLE guild_tiers (
    guild_id    INTEGER NOT NULL,
    role_id     INTEGER NOT NULL,
    credits     INTEGER NOT NULL CHECK (credits >= 0),
    updated_by  INTEGER,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, role_id)
);
CREATE TABLE images (
    hash        TEXT PRIMARY KEY CHECK (length(hash) = 64),
    mime        TEXT NOT NULL,
    data        BLOB NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0)
);
CREATE TABLE job_image_refs (
    job_id  INTEGER NOT NULL REFERENCES jobs (id),
    role    TEXT NOT NULL CHECK (role IN ('first', 'last')),
    hash    TEXT NOT NULL REFERENCES images (hash),
    PRIMARY KEY (job_id, role)
);
CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY,
    guild_id            INTEGER NOT NULL,
    channel_id          INTEGER NOT NULL,
    user_id             INTEGER NOT NULL,
    interaction_id      INTEGER,
    status_message_id   INTEGER,
    status              TEXT NOT NULL CHECK (status IN (
                            'awaiting_approval', 'queued', 'submitting', 'submitted',
                            'running', 'succeeded', 'delivered', 'rejected', 'expired',
                            'cancelled', 'failed', 'delivery_failed')),
    spec                TEXT NOT NULL,
    cost                INTEGER NOT NULL CHECK (cost >= 0),
    period              TEXT NOT NULL,
    locale              TEXT NOT NULL DEFAULT 'en-US',
    attachment_limit    INTEGER,
    provider            TEXT,
    provider_task_id    TEXT,
    provider_meta       TEXT NOT NULL DEFAULT '{}',
    submit_attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     REAL NOT NULL DEFAULT 0,
    progress            INTEGER,
    polls               INTEGER NOT NULL DEFAULT 0,
    next_poll_at        REAL NOT NULL DEFAULT 0,
    result_locator      TEXT,
    failure_rule        TEXT,
    failure_params      TEXT NOT NULL DEFAULT '{}',
    delivery_attempts   INTEGER NOT NULL DEFAULT 0,
    next_delivery_at    REAL NOT NULL DEFAULT 0,
    delivered_message_id INTEGER,
    delivery_kind       TEXT CHECK (delivery_kind IS NULL OR delivery_kind IN ('attachment', 'link')),
    delivery_bytes      INTEGER,
    created_at          REAL NOT NULL,
    updated_at          REAL NOT NULL,
    submitted_at        REAL,
    finished_at         REAL
, card_seen TEXT, notify TEXT NOT NULL DEFAULT 'mention', thread_id INTEGER, lease_holder TEXT, lease_expires REAL, revision INTEGER NOT NULL DEFAULT 0);
CREATE TABLE learned_durations (
    key TEXT PRIMARY KEY,
    recent TEXT NOT NULL,  -- JSON array of the most recent durations (seconds), newest last
    updated_at REAL NOT NULL
);
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    job_id      INTEGER REFERENCES jobs (id),
    kind        TEXT NOT NULL CHECK (kind IN ('reserve', 'charge', 'refund', 'grant', 'reset', 'expire')),
    delta       INTEGER NOT NULL,
    period      TEXT NOT NULL,
    actor_id    INTEGER,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL
);
CREATE TABLE ledger_balances (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    period      TEXT NOT NULL,
    used        INTEGER NOT NULL DEFAULT 0,
    reserved    INTEGER NOT NULL DEFAULT 0,
    adjusted    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, user_id, period)
);
CREATE TABLE member_settings (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    notify      TEXT NOT NULL DEFAULT 'mention' CHECK (notify IN ('mention', 'dm', 'quiet')),
    updated_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
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
CREATE TABLE moderation_versions (
    guild_id    INTEGER PRIMARY KEY,
    version     INTEGER NOT NULL
);
CREATE TABLE provider_limits (
    provider    TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    state       TEXT NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE TABLE strikes (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    job_id      INTEGER REFERENCES jobs (id),
    rule        TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER blocklist_delete_version AFTER DELETE ON blocklist
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (OLD.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER blocklist_insert_version AFTER INSERT ON blocklist
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (NEW.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER blocklist_update_version AFTER UPDATE ON blocklist
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (NEW.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER jobs_revision AFTER UPDATE ON jobs WHEN NEW.revision = OLD.revision
BEGIN UPDATE jobs SET revision = OLD.revision + 1 WHERE id = NEW.id; END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER moderation_settings_delete_version AFTER DELETE ON moderation_settings
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (OLD.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER moderation_settings_insert_version AFTER INSERT ON moderation_settings
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (NEW.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER moderation_settings_update_version AFTER UPDATE ON moderation_settings
BEGIN
    INSERT INTO moderation_versions (guild_id, version) VALUES (NEW.guild_id, 1)
    ON CONFLICT (guild_id) DO UPDATE SET version = version + 1;
END;
CREATE VIEW job_images AS
SELECT r.job_id AS job_id, r.role AS role, i.mime AS mime, i.data AS data
FROM job_image_refs r JOIN images i ON i.hash = r.hash;
