-- 010: spend in money. A server's own price of a video per provider x model x
-- resolution x duration (overriding the defaults each provider's capability
-- declares), and a server budget in money beside the one in credits.
-- Money is an integer of micro-dollars (USD 0.28 = 280000): exact sums, no floats.
-- NULL budget: none set.

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

ALTER TABLE guild_settings ADD COLUMN daily_money_budget INTEGER
    CHECK (daily_money_budget IS NULL OR daily_money_budget > 0);
ALTER TABLE guild_settings ADD COLUMN monthly_money_budget INTEGER
    CHECK (monthly_money_budget IS NULL OR monthly_money_budget > 0);

-- The money view and the money budget read a server's jobs by the time they were made.
CREATE INDEX jobs_guild_time ON jobs (guild_id, created_at);
