-- 009: running balances beside the ledger, and indexes, so that no query on the money
-- path (reserve, settle) or of the worker grows with the jobs a server ever had.
--
-- Each member's period, as the ledger sums it (``storage.ledger.PERIOD_USAGE_FROM_LEDGER``),
-- kept up to date in the same transaction as every ledger row (``storage.ledger``):
-- used = credits taken by jobs net of refunds, reserved = the part still held by
-- unsettled jobs, adjusted = grants, take-backs and resets. The ledger stays the truth;
-- a test keeps these equal to its sums.
CREATE TABLE ledger_balances (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    period      TEXT NOT NULL,
    used        INTEGER NOT NULL DEFAULT 0,
    reserved    INTEGER NOT NULL DEFAULT 0,
    adjusted    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, user_id, period)
);

-- A server's credits reserved by its jobs, net of those jobs' refunds, per quarter hour
-- of reservation (``slot`` = reservation time // 900, UTC). Every time zone's midnight
-- falls on a quarter hour, so a budget's local day is at most 96 rows and its month at
-- most 2,976, whatever the history (``storage.ledger.GUILD_SPEND``).
CREATE TABLE guild_spend (
    guild_id    INTEGER NOT NULL,
    slot        INTEGER NOT NULL,
    credits     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, slot)
);

INSERT INTO ledger_balances (guild_id, user_id, period, used, reserved, adjusted)
SELECT guild_id, user_id, period,
    COALESCE(-SUM(CASE WHEN kind IN ('reserve', 'charge', 'refund') THEN delta END), 0),
    COALESCE(SUM(CASE WHEN kind = 'reserve' AND NOT EXISTS (
        SELECT 1 FROM ledger s WHERE s.job_id = ledger.job_id AND s.kind IN ('charge', 'refund')
    ) THEN -delta ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN kind IN ('grant', 'reset', 'expire') THEN delta END), 0)
FROM ledger GROUP BY guild_id, user_id, period;

INSERT INTO guild_spend (guild_id, slot, credits)
SELECT r.guild_id, CAST(r.created_at / 900 AS INTEGER) AS slot,
    SUM(-r.delta - COALESCE((SELECT SUM(f.delta) FROM ledger f
                             WHERE f.job_id = r.job_id AND f.kind = 'refund'), 0))
FROM ledger r WHERE r.kind = 'reserve'
GROUP BY r.guild_id, CAST(r.created_at / 900 AS INTEGER);

-- The in-flight caps count a server's open jobs only (``storage.guilds.COUNT_IN_FLIGHT``),
-- not every job it ever had; the words are ``hailuo.model.status.IN_FLIGHT``.
CREATE INDEX jobs_in_flight ON jobs (guild_id, user_id) WHERE status IN
    ('awaiting_approval', 'queued', 'running', 'submitted', 'submitting', 'succeeded');
