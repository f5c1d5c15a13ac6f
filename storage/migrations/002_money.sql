-- 002: the owner's money. Per-server policy (allowance and its period, time zone,
-- budgets, in-flight caps, cool-down, the admins' notice channel), role tiers,
-- per-server cost overrides, and a record of the budget notices already sent,
-- so each threshold is told once per period. (Member blocks live in 003's
-- ``blocks``, shared with moderation.)
-- Balances and spend stay sums over ``ledger``: nothing here counts credits.
-- A NULL setting means "the default" (the bot's environment), so a server
-- with no row works without any set-up.

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
);

-- A member's allowance is the highest of the server's allowance and the tiers of their roles.
CREATE TABLE guild_tiers (
    guild_id    INTEGER NOT NULL,
    role_id     INTEGER NOT NULL,
    credits     INTEGER NOT NULL CHECK (credits >= 0),
    updated_by  INTEGER,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, role_id)
);

-- Overrides of hailuo.quotas.DEFAULT_COSTS for one server.
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

-- One row per (server, budget scope, period, threshold) once its notice is due.
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

-- A server's spend is summed by the time of each job's reservation (``delta`` makes
-- the index cover the sum of reservations).
CREATE INDEX ledger_guild_time ON ledger (guild_id, kind, created_at, delta);
CREATE INDEX ledger_job ON ledger (job_id, kind);
