-- 003 (SQLite 009): running balances beside the ledger, and an index, so that no query
-- on the money path (reserve, settle) or of the worker grows with the jobs a server ever
-- had. The ledger stays the truth; a test keeps these equal to its sums.
CREATE TABLE ledger_balances (
    guild_id    BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    period      TEXT NOT NULL,
    used        BIGINT NOT NULL DEFAULT 0,
    reserved    BIGINT NOT NULL DEFAULT 0,
    adjusted    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, user_id, period)
);

-- A server's credits reserved by its jobs, net of those jobs' refunds, per quarter hour
-- of reservation (``slot`` = reservation time // 900, UTC).
CREATE TABLE guild_spend (
    guild_id    BIGINT NOT NULL,
    slot        BIGINT NOT NULL,
    credits     BIGINT NOT NULL DEFAULT 0,
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

-- floor(), not CAST: PostgreSQL's CAST rounds where SQLite's truncates.
INSERT INTO guild_spend (guild_id, slot, credits)
SELECT r.guild_id, floor(r.created_at / 900)::bigint AS slot,
    SUM(-r.delta - COALESCE((SELECT SUM(f.delta) FROM ledger f
                             WHERE f.job_id = r.job_id AND f.kind = 'refund'), 0))
FROM ledger r WHERE r.kind = 'reserve'
GROUP BY r.guild_id, floor(r.created_at / 900)::bigint;

-- The in-flight caps count a server's open jobs only, not every job it ever had.
CREATE INDEX jobs_in_flight ON jobs (guild_id, user_id) WHERE status IN
    ('awaiting_approval', 'queued', 'running', 'submitted', 'submitting', 'succeeded');
