-- 006 (SQLite's 013): the queued jobs' own index. ``jobs_open`` was keyed by the state, so
-- every step of every job rewrote its entry; the claim of queued jobs reads ``jobs_queued``
-- (touched only when a job enters or leaves the queue), and the listings of open jobs read
-- ``jobs_in_flight``, which holds the same open jobs.
DROP INDEX jobs_open;
CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued';
