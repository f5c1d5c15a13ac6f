-- 010: several bot processes share one queue and one set of provider limits (issue 14,
-- items 2 and 4). Each step of a job (submit, poll, deliver) is taken under a lease: the
-- process that holds it (``HAILUO_PROCESS_ID``) and when it lapses unless renewed. A
-- process that dies stops renewing, and another takes the job over once it lapsed.
ALTER TABLE jobs ADD COLUMN lease_holder TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires REAL;
-- A job left in ``submitting`` by a process that died is found through its lapsed lease.
CREATE INDEX jobs_submitting_lease ON jobs (lease_expires) WHERE status = 'submitting';
-- Each provider's submission limiter and circuit breaker, shared by every process: the
-- state as JSON, replaced only by a compare-and-set on ``version``, so N processes never
-- send N times a provider's fixed rate and all see one circuit.
CREATE TABLE provider_limits (
    provider    TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    state       TEXT NOT NULL,
    updated_at  REAL NOT NULL
);
