CREATE INDEX jobs_member ON jobs (guild_id, user_id, created_at);
CREATE INDEX jobs_open ON jobs (status) WHERE status NOT IN
    ('delivered', 'rejected', 'expired', 'cancelled', 'failed', 'delivery_failed');
CREATE UNIQUE INDEX jobs_provider_task ON jobs (provider, provider_task_id)
    WHERE provider_task_id IS NOT NULL;
CREATE INDEX ledger_member ON ledger (guild_id, user_id, period);
CREATE UNIQUE INDEX ledger_one_settlement ON ledger (job_id) WHERE kind IN ('charge', 'refund');
CREATE TABLE bot_state (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
CREATE TABLE job_images (
    job_id  INTEGER NOT NULL REFERENCES jobs (id),
    role    TEXT NOT NULL CHECK (role IN ('first', 'last')),
    mime    TEXT NOT NULL,
    data    BLOB NOT NULL,
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
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
