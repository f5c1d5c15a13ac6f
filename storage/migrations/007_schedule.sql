-- 007: the worker's schedule and what it learns.
-- The worker reads only the jobs that are due, through these two indexes, instead of
-- decoding every open job at every tick (10,000 open jobs stalled the loop for ~1 s).
CREATE INDEX jobs_poll_due ON jobs (next_poll_at) WHERE status IN ('submitted', 'running');
CREATE INDEX jobs_delivery_due ON jobs (next_delivery_at) WHERE status = 'succeeded';
-- What the job's card last showed (a short digest), so a restart does not re-edit it.
ALTER TABLE jobs ADD COLUMN card_seen TEXT;
-- How long a task of one kind (provider x model x resolution x duration) takes at its
-- provider, learned from this bot's own finished jobs: the first status query is timed
-- near the expected finish instead of every few seconds from the submission.
CREATE TABLE learned_durations (
    key TEXT PRIMARY KEY,
    recent TEXT NOT NULL,  -- JSON array of the most recent durations (seconds), newest last
    updated_at REAL NOT NULL
);
