-- 013: the queued jobs' own index (issue 13). ``jobs_open`` was keyed by the state, so
-- every step of every job (queued, submitting, submitted, running, succeeded) deleted and
-- inserted its entry: a sixth of what a transition's UPDATE cost. What read it are the
-- claim of queued jobs, in id order, and the listings of open jobs; the first now reads
-- ``jobs_queued``, touched only when a job enters or leaves the queue, and the others
-- ``jobs_in_flight`` (migration 009), which holds the same open jobs.
DROP INDEX jobs_open;
CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued';
